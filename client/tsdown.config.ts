/**
 * Builds the published package: ESM (`dist/index.mjs`) and CommonJS
 * (`dist/index.cjs`), each with its own declarations (`.d.mts`, `.d.cts`),
 * for Node 20. `ws` stays a dependency; the repository's private contract
 * module (@roster/contract) is bundled in, JavaScript and types alike, so
 * the package has exactly one runtime dependency.
 *
 * And the package's `roster` bin (`dist/roster.mjs`): the CLI's `nodes`,
 * `watch` and `agent` (cli/sdk-bin.ts). It imports the SDK from the package
 * itself (`@roster/client` stays external and resolves to `dist/index.mjs`),
 * so the bin adds only the command-line code.
 */
import { defineConfig } from 'tsdown';

const shared = {
  platform: 'node',
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
  // The code ships without comments; the declarations keep their documentation.
  outputOptions: { comments: false },
  // A busy machine makes any plugin look slow; the build's time is not a finding.
  checks: { pluginTimings: false },
} as const;

export default defineConfig([
  {
    ...shared,
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: { eager: true },
    clean: true,
    deps: { neverBundle: ['ws'], alwaysBundle: ['@roster/contract'] },
  },
  {
    ...shared,
    entry: { roster: '../cli/sdk-bin.ts' },
    format: ['esm'],
    dts: false,
    // Only the SDK's entry point stays an import; its package.json (the version) is read at build time.
    deps: { neverBundle: ['ws', /^@roster\/client$/], alwaysBundle: ['@roster/contract', '@roster/client/package.json'] },
  },
]);
