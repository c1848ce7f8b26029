import { defineConfig } from 'vitest/config';

/**
 * The robustness runs (test/robustness/) each start DynamoDB Local, a runtime
 * and half a dozen client processes for a minute: they run last, one at a
 * time, so they neither slow the other tests nor each other on a 2-core box.
 */
const ROBUSTNESS_RUNS = ['test/robustness/regressions.test.ts', 'test/robustness/profile.test.ts'];

export default defineConfig({
  // The repository imports the SDK by its package name; its sources, not a build, are what the tests run
  // (the `@roster/source` export condition of client/package.json, as in tsconfig.json and bin/roster.js).
  resolve: { conditions: ['@roster/source'] },
  ssr: { resolve: { conditions: ['@roster/source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 90_000,
    // Test files start real processes and servers; two at a time suits a 2-core machine.
    maxWorkers: 2,
    // The pinned AWS SDK runs on Node 20; keep its notice about future releases out of test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', POWERTOOLS_LOG_LEVEL: 'WARN' },
    projects: [
      {
        extends: true,
        test: { name: 'tests', include: ['test/**/*.test.ts'], exclude: ROBUSTNESS_RUNS, globalSetup: ['test/support/global-setup.ts'] },
      },
      ...ROBUSTNESS_RUNS.map((file, i) => ({
        extends: true as const,
        test: { name: `robustness-${i + 1}`, include: [file], sequence: { groupOrder: i + 1 } },
      })),
    ],
  },
});
