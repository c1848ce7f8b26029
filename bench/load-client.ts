/**
 * A lean HTTP/1.1 client for load generation: node:http with a keep-alive
 * agent, so a bench worker pays for one request, not for fetch's machinery
 * or a new connection. Loopback only: the bench targets the runtime it
 * started itself.
 */
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Reply {
  status: number;
  body: string;
}

export class LoadClient {
  readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(baseUrl: string, maxSockets: number) {
    const url = new URL(baseUrl);
    if (url.hostname !== '127.0.0.1' && url.hostname !== '[::1]' && url.hostname !== 'localhost') {
      throw new Error(`the bench only talks to loopback, not ${url.hostname}`);
    }
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(url.port || 80);
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  send(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<Reply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.host,
          port: this.port,
          method,
          path,
          agent: this.agent,
          timeout: timeoutMs,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.once('error', reject);
        },
      );
      req.once('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.once('error', reject);
      req.end(payload);
    });
  }

  register(clusterId: string, nodeId: string, leaseSeconds: number): Promise<Reply> {
    return this.registration(clusterId, nodeId, { leaseSeconds });
  }

  /**
   * A registration's PUT, sent again after a 429 as the SDK does (at most 20 times, 0.1-0.5 s apart): the register
   * route's bucket is small (infra/deployment-size.ts), so a burst of registrations is paced, not refused.
   * `timeoutMs` bounds the wait for each answer (default 30 s).
   */
  async registration(clusterId: string, nodeId: string, body: Record<string, unknown>, timeoutMs?: number): Promise<Reply> {
    for (let attempt = 1; ; attempt++) {
      const reply = await this.send('PUT', `/v1/clusters/${clusterId}/nodes/${nodeId}`, body, timeoutMs);
      if (reply.status !== 429 || attempt >= 20) return reply;
      await sleep(100 + Math.random() * 400);
    }
  }

  keepalive(clusterId: string, nodeId: string): Promise<Reply> {
    return this.send('POST', `/v1/clusters/${clusterId}/nodes/${nodeId}/keepalive`, {});
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Registers or fails with the status and body. */
export async function mustRegister(http: LoadClient, clusterId: string, nodeId: string, leaseSeconds: number): Promise<void> {
  const reply = await http.register(clusterId, nodeId, leaseSeconds);
  if (reply.status !== 200 && reply.status !== 201) throw new Error(`register ${clusterId}/${nodeId}: HTTP ${reply.status} ${reply.body.slice(0, 200)}`);
}
