/**
 * Builds the published package: ESM (`dist/index.mjs`) and CommonJS
 * (`dist/index.cjs`), each with its own declarations (`.d.mts`, `.d.cts`),
 * for Node 20. `ws` stays a dependency; the repository's private contract
 * module (@roster/contract) is bundled in, JavaScript and types alike, so
 * the package has exactly one runtime dependency.
 */
import { defineConfig } from 'tsdown';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  platform: 'node',
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
  dts: { eager: true },
  clean: true,
  deps: { neverBundle: ['ws'], alwaysBundle: ['@roster/contract'] },
  // The code ships without comments; the declarations keep their documentation.
  outputOptions: { comments: false },
  // A busy machine makes any plugin look slow; the build's time is not a finding.
  checks: { pluginTimings: false },
});
