/**
 * The settings, spelled once (functions/core/config.ts): `toEnvironment` is
 * the exact inverse of `readConfig`, and a value out of range is refused
 * with the same message by the functions, by `cdk synth` and by the local
 * runtime.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS, readConfig, toEnvironment, variableOf, type Config, type SettingName } from '../../functions/core/config.ts';
import { resolveOptions } from '../../local/runtime.ts';
import { removeAssemblies, synthRoster } from './support.ts';

afterAll(removeAssemblies);

const full: Config = {
  tableName: 'roster-prod',
  dynamodbEndpoint: 'http://127.0.0.1:8000',
  defaultLeaseSeconds: 30,
  disconnectGraceSeconds: 0.5,
  sweepIntervalSeconds: 0.25,
  downRetentionSeconds: 3600,
  sweepShards: 16,
  sweeperAmnestySeconds: 90.5,
  selfPreservationPercent: 12.5,
  selfPreservationMinNodes: 20,
  selfPreservationMaxSeconds: 300,
  sweeperAmnestyOnStart: true,
  sweepLoopSeconds: 60,
  fanoutPostsPerSecond: 2500,
  websocketCallbackUrl: 'https://abc.execute-api.eu-west-1.amazonaws.com/live',
  fanoutPageFunction: 'roster-fanout-page',
  lambdaEndpoint: 'http://127.0.0.1:9001',
};

/** The edges of every range, and the defaults: each must survive the round trip exactly. */
const edges: Partial<Record<SettingName, number[]>> = {
  defaultLeaseSeconds: [2, 3600],
  disconnectGraceSeconds: [0, 0.1, 3600],
  sweepIntervalSeconds: [0.05, 0.3, 60],
  downRetentionSeconds: [60, 365 * 86_400],
  sweepShards: [1, 64],
  sweeperAmnestySeconds: [1, 86_400],
  selfPreservationPercent: [0, 15, 100],
  selfPreservationMinNodes: [2, 1_000_000],
  selfPreservationMaxSeconds: [0, 86_400],
  sweepLoopSeconds: [0, 840],
  fanoutPostsPerSecond: [1, 1_000_000],
};

describe('toEnvironment', () => {
  it('is the inverse of readConfig: readConfig(toEnvironment(c)) equals c', () => {
    expect(readConfig(toEnvironment(full))).toEqual(full);
    const defaults: Config = { ...CONFIG_DEFAULTS, sweeperAmnestyOnStart: false, tableName: 't', dynamodbEndpoint: undefined, websocketCallbackUrl: undefined, fanoutPageFunction: undefined, lambdaEndpoint: undefined };
    expect(readConfig(toEnvironment(defaults))).toEqual(defaults);
    for (const [name, values] of Object.entries(edges) as [SettingName, number[]][]) {
      for (const value of values) {
        const config = { ...full, [name]: value };
        expect(readConfig(toEnvironment(config)), `${name}=${value}`).toEqual(config);
      }
    }
  });

  it('writes only what it is given, by the variable names the functions read', () => {
    expect(toEnvironment({ sweepLoopSeconds: 60 })).toEqual({ SWEEP_LOOP_SECONDS: '60' });
    expect(toEnvironment({ tableName: 'x', websocketCallbackUrl: undefined })).toEqual({ TABLE_NAME: 'x' });
    expect(Object.keys(toEnvironment(full)).sort()).toEqual(
      ['TABLE_NAME', 'DYNAMODB_ENDPOINT', 'WEBSOCKET_CALLBACK_URL', 'SWEEPER_AMNESTY_ON_START', 'FANOUT_PAGE_FUNCTION', 'LAMBDA_ENDPOINT', ...(Object.keys(edges) as SettingName[]).map(variableOf)].sort(),
    );
  });

  it('refuses a value out of range with the message readConfig gives for the same value', () => {
    const cases: [SettingName, number][] = [
      ['sweepIntervalSeconds', 0.01],
      ['defaultLeaseSeconds', 1],
      ['defaultLeaseSeconds', 2.5],
      ['sweepShards', 65],
      ['disconnectGraceSeconds', -1],
      ['downRetentionSeconds', Number.NaN],
      ['selfPreservationMinNodes', 1],
      ['selfPreservationPercent', 101],
    ];
    for (const [name, value] of cases) {
      const message = captured(() => readConfig({ TABLE_NAME: 't', [variableOf(name)]: String(value) }));
      expect(message, `${name}=${value}`).toMatch(new RegExp(`^Configuration error: ${variableOf(name)}=`));
      expect(captured(() => toEnvironment({ [name]: value })), `${name}=${value}`).toBe(message);
    }
    expect(() => toEnvironment({ tableName: '' })).toThrow(/TABLE_NAME must not be empty/);
  });

  it('is how cdk synth refuses a setting: the same message, before anything is deployed', () => {
    const message = captured(() => readConfig({ TABLE_NAME: 't', SWEEP_INTERVAL_SECONDS: '0.01' }));
    expect(message).toBe('Configuration error: SWEEP_INTERVAL_SECONDS=0.01 must be a number between 0.05 and 60');
    expect(() => synthRoster({ sweepIntervalSeconds: '0.01' })).toThrow(message);
    expect(() => synthRoster({}, { sweepShards: 65 })).toThrow(captured(() => toEnvironment({ sweepShards: 65 })));
  });

  it('is how the local runtime refuses a setting: the same message, before anything starts', () => {
    const message = captured(() => toEnvironment({ disconnectGraceSeconds: 7200 }));
    expect(() => resolveOptions({ disconnectGraceSeconds: 7200 })).toThrow(message);
    expect(() => resolveOptions({ defaultLeaseSeconds: 1 })).toThrow(/DEFAULT_LEASE_SECONDS=1 must be a whole number between 2 and 3600/);
  });
});

function captured(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}
