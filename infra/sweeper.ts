/**
 * The sweeper: EventBridge starts it every minute (its floor), and each
 * invocation sweeps every `sweepIntervalSeconds` for that minute, which gives
 * sub-minute detection (see docs/operating/cost.md).
 */
import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Construct } from 'constructs';
import { toEnvironment } from '../functions/core/config.ts';
import { RosterFunction, type FunctionDefaults } from './function.ts';
import { SWEEPER_TABLE_ACCESS } from './table-access.ts';

/** The sweeper is scheduled every minute (EventBridge's floor) and sweeps for that long inside one invocation. */
export const SWEEPER_SCHEDULE = Duration.minutes(1);
export const SWEEP_LOOP_SECONDS = SWEEPER_SCHEDULE.toSeconds();

export interface RosterSweeperProps {
  readonly functions: FunctionDefaults;
  readonly table: ITable;
  /**
   * Reserved concurrency: two invocations may overlap for a few seconds at the
   * minute boundary (their writes are conditional, so that is harmless); more
   * are never needed. Reserving is refused when it would leave the account
   * fewer than 10 unreserved executions, which is all a new account has.
   * @default none (the account's unreserved pool)
   */
  readonly reservedConcurrency?: number;
}

export class RosterSweeper extends Construct {
  readonly function: RosterFunction;

  constructor(scope: Construct, id: string, props: RosterSweeperProps) {
    super(scope, id);
    this.function = new RosterFunction(this, 'Function', {
      ...props.functions,
      entry: 'functions/sweeper/sweeper.ts',
      description: 'Roster sweeper: marks UP nodes past their lease DOWN',
      environment: toEnvironment({ sweepLoopSeconds: SWEEP_LOOP_SECONDS }),
      // I/O bound and always on: the smallest size keeps its standing cost lowest (see docs/operating/cost.md).
      memorySize: 128,
      // The loop ends after SWEEP_LOOP_SECONDS; the rest is headroom for a slow last sweep.
      timeout: Duration.seconds(SWEEP_LOOP_SECONDS + 30),
      reservedConcurrentExecutions: props.reservedConcurrency,
    });
    this.function.useTable(props.table, SWEEPER_TABLE_ACCESS);
    // A failed or late tick is superseded by the next one a minute later: never retry it.
    this.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: SWEEPER_SCHEDULE });
    new Rule(this, 'Schedule', {
      description: 'Starts a Roster sweeper invocation every minute',
      schedule: Schedule.rate(SWEEPER_SCHEDULE),
      targets: [new LambdaFunction(this.function, { retryAttempts: 0, maxEventAge: SWEEPER_SCHEDULE })],
    });
  }
}
