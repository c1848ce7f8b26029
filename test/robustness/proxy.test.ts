/**
 * The TCP fault proxy's delay (robustness/proxy.ts; cut and freeze are
 * exercised by the client tests): everything still arrives, in order, late
 * by the delay each way, and a restore delivers what is held at once.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startProxy, type TcpProxy } from '../../robustness/proxy.ts';
import { eventually, sleep } from '../support/wait.ts';

let echo: Server;
let proxy: TcpProxy;

beforeAll(async () => {
  // A proxy that resets a connection resets these sockets too: that is no error of the test.
  echo = createServer((socket) => socket.on('error', () => undefined).pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  proxy = await startProxy({ targetPort: (echo.address() as { port: number }).port });
});

afterAll(async () => {
  await proxy.close();
  await new Promise((resolve) => echo.close(resolve));
});

async function client(): Promise<{ socket: Socket; received: () => string }> {
  const socket = connect({ host: '127.0.0.1', port: proxy.port }).on('error', () => undefined);
  let text = '';
  socket.setEncoding('utf8').on('data', (d: string) => (text += d));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, received: () => text };
}

test('a delayed path delivers everything, in order, at least the delay late each way', async () => {
  const { socket, received } = await client();
  proxy.delay(300);
  const sent = Date.now();
  for (const word of ['a', 'b', 'c', 'd']) socket.write(word);
  await eventually(() => received() === 'abcd', 10_000, 'the four chunks');
  expect(Date.now() - sent).toBeGreaterThanOrEqual(600);
  proxy.restore();
  socket.destroy();
});

test('a restore delivers what the delay still holds at once', async () => {
  const { socket, received } = await client();
  proxy.delay(60_000);
  socket.write('held');
  // Nothing may arrive while the delay holds it (a minute; a fifth of a second shows it is held).
  await sleep(200);
  expect(received()).toBe('');
  proxy.restore();
  await eventually(() => received() === 'held', 10_000, 'the held chunk');
  socket.destroy();
});
