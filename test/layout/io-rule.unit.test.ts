/**
 * The unit rule (test/support/io-rule.ts) refuses, where it is attempted,
 * each kind of I/O a unit test may not do; each refusal is taken back off
 * the record (`takeSeen`) so that this file itself passes. That a refusal the
 * code swallowed still fails the file, and that an integration file without
 * I/O fails: io-rule.test.ts.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { createServer } from 'node:http';
import { afterEach, expect, test } from 'vitest';
import { takeSeen, UnitTestIoError } from '../support/io-rule.ts';

afterEach(() => {
  takeSeen();
});

test('starting a child process throws, whichever child_process function starts it', () => {
  expect(() => spawnSync(process.execPath, ['--version'])).toThrow(UnitTestIoError);
  expect(() => spawn(process.execPath, ['--version'])).toThrow(/needs no store, server or child process.*start a child process \(spawn /);
  expect(() => execFile(process.execPath, ['--version'])).toThrow(UnitTestIoError);
  expect(takeSeen()).toHaveLength(3);
});

test('listening on a port throws, for an HTTP server too, and nothing listens', () => {
  const server = createServer();
  expect(() => server.listen(0)).toThrow(/listen on a port/);
  expect(server.listening).toBe(false);
});

test('opening a connection throws, for fetch too', async () => {
  expect(() => net.connect({ host: '127.0.0.1', port: 9 })).toThrow(/open a connection \(127\.0\.0\.1:9\)/);
  // fetch reports the refusal as its cause.
  const refused = await fetch('http://127.0.0.1:2/').catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(TypeError);
  expect((refused as TypeError).cause).toBeInstanceOf(UnitTestIoError);
});
