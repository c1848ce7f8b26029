import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The repository imports the SDK by its package name; its sources, not a build, are what the tests run
  // (the `@roster/source` export condition of client/package.json, as in tsconfig.json and bin/roster.js).
  resolve: { conditions: ['@roster/source'] },
  ssr: { resolve: { conditions: ['@roster/source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 90_000,
    // Test files start real processes and servers; two at a time suits a 2-core machine.
    maxWorkers: 2,
    // The pinned AWS SDK runs on Node 20; keep its notice about future releases out of test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', POWERTOOLS_LOG_LEVEL: 'WARN' },
  },
});
