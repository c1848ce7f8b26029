import { defineConfig } from 'vitest/config';

/**
 * Two kinds of test file, told apart by what they do (test/support/io-rule.ts
 * holds each file to its kind; docs/contributing/testing.md#unit-tests):
 *
 * - `*.unit.test.ts` need no store, server or child process: the `unit`
 *   project, without the global setup, is `npm run test:unit`.
 * - every other file starts something: the `tests` project, behind the global
 *   setup (one DynamoDB Local, the stack's template synthesized once).
 *
 * The robustness runs (test/robustness/) each start DynamoDB Local, a runtime
 * and half a dozen client processes for a minute: they run last, so they do
 * not slow the other tests on a 2-core box, and side by side (about 0.55 of
 * a core each: both in 86–93 s, where one after the other took 148 s; they
 * passed so three times running, once beside a busy loop on one core).
 */
const UNIT = 'test/**/*.unit.test.ts';
const ROBUSTNESS_RUNS = ['test/robustness/regressions.test.ts', 'test/robustness/profile.test.ts'];
const IO_RULE = 'test/support/io-rule.ts';

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
    env: {
      // The pinned AWS SDK runs on Node 20; keep its notice about future releases out of test output.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'WARN',
      // CDK's built-in CloudFormation schema validation costs seconds per process that synthesizes (the tests,
      // and the runtimes and CLI commands they start). It only warns, and test/infra/synth.test.ts runs the real
      // `cdk synth` with it on (its environment has no CDK_* variable) and checks its report.
      CDK_VALIDATION: 'false',
      // The DynamoDB Locals the tests start live seconds to a minute: the JVM's client compiler alone halves
      // their CPU (JVM_OPTIONS_VARIABLE in local/dynamodb-local.ts has the figures).
      ROSTER_DYNAMODB_LOCAL_JVM_OPTIONS: '-XX:TieredStopAtLevel=1',
    },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [UNIT],
          // One module graph per worker, not per file: aws-cdk-lib and the contract's parsers load once, not in each
          // file that needs them (most of this project's time). Unit tests keep no state between files (fake timers
          // are put back after each test), and the I/O rule holds with it (test/layout/io-rule.test.ts runs it so).
          isolate: false,
          setupFiles: [IO_RULE],
          provide: { ioRule: 'unit' },
        },
      },
      {
        extends: true,
        test: {
          name: 'tests',
          include: ['test/**/*.test.ts'],
          exclude: [UNIT, ...ROBUSTNESS_RUNS],
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: [IO_RULE],
          provide: { ioRule: 'integration' },
        },
      },
      {
        extends: true,
        test: { name: 'robustness', include: ROBUSTNESS_RUNS, sequence: { groupOrder: 1 }, setupFiles: [IO_RULE], provide: { ioRule: 'integration' } },
      },
    ],
  },
});
