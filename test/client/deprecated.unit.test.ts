/**
 * The SDK's client was called RegistryClient before the glossary; the old
 * name stays exported (deprecated) for 0.x so that no user's code breaks.
 */
import { describe, expect, expectTypeOf, test } from 'vitest';
import { RegistryClient, RosterClient, type RegistryClientOptions, type RosterClientOptions } from '@roster/client';

describe('the deprecated RegistryClient alias', () => {
  test('RegistryClient is RosterClient: the same constructor and the same instance and options types', () => {
    expect(RegistryClient).toBe(RosterClient);
    const client = new RegistryClient({ httpUrl: 'http://127.0.0.1:1', wsUrl: 'ws://127.0.0.1:1/ws', clusterId: 'c1' });
    expect(client).toBeInstanceOf(RosterClient);
    expectTypeOf<RegistryClient>().toEqualTypeOf<RosterClient>();
    expectTypeOf<RegistryClientOptions>().toEqualTypeOf<RosterClientOptions>();
  });
});
