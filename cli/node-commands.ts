/**
 * The commands a node's host needs — `nodes`, `watch` and `agent` — which
 * use nothing but the SDK. The repository's CLI (cli/main.ts) has them among
 * its others; the @roster/client package ships them as its own `roster` bin
 * (cli/sdk-bin.ts, bundled by client/tsdown.config.ts), so that `npx roster`
 * resolves to the installed package wherever the SDK is a dependency.
 */
import { listNodes, RosterClient, type ClientEvent, type KeepaliveFailedEvent, type KeepaliveRecoveredEvent } from '@roster/client';
import { DEFAULT_LEASE_SECONDS, LEASE_MAX_SECONDS, LEASE_MIN_SECONDS } from '@roster/contract';
import { checkId, keyValues, parse, positiveNumber, wholeNumber } from './args.ts';
import { type Command, showHelp, UsageError } from './command.ts';
import { ago, metadataText, out, table } from './output.ts';
import { resolveTarget, type Target, TARGET_HELP, TARGET_OPTIONS } from './target-flags.ts';
import { startersOf, watchStarters } from './starter.ts';

/** The agent's own node, for the lines about itself. */
interface Self {
  clusterId: string;
  nodeId: string;
  pid: number;
}

function eventJson(event: ClientEvent): Record<string, unknown> {
  const at = new Date().toISOString();
  switch (event.type) {
    case 'change':
      return { type: 'change', at, revision: event.revision, nodes: event.nodes.map((n) => n.nodeId) };
    case 'keepaliveFailed':
      return { type: event.type, at, consecutive: event.consecutive, error: { code: event.error.code, message: event.error.message } };
    case 'lost':
      return { type: event.type, at, reason: event.reason, ...(event.error ? { error: { code: event.error.code, message: event.error.message } } : {}) };
    case 'warning':
      return { type: event.type, at, message: event.message };
    case 'closed':
      return { type: event.type, at, deregistered: event.deregistered, ...(event.error ? { error: { code: event.error.code, message: event.error.message } } : {}) };
    case 'registered':
    case 'updated':
    case 'down':
      return { ...event, at, nodeId: event.node.nodeId };
    default:
      return { ...event, at };
  }
}

const clock = (ms: number): string => new Date(ms).toISOString().slice(11, 19);

/** How often a keepalive that keeps failing the same way is mentioned again. */
export const STILL_FAILING_EVERY_MS = 60_000;

/**
 * During an outage a keepalive fails every second or so (the backoff's
 * ceiling). Text output says so once, again when the error changes and once
 * a minute while it lasts, and once when a keepalive succeeds again; `--json`
 * keeps every event.
 */
export class KeepaliveReport {
  private since: number | undefined;
  private code = '';
  private shownAt = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly everyMs = STILL_FAILING_EVERY_MS,
  ) {}

  failed(event: KeepaliveFailedEvent): string | undefined {
    const reason = `${event.error.code}: ${event.error.message}`;
    const now = this.now();
    let text: string | undefined;
    if (this.since === undefined) {
      this.since = now;
      text = `${reason}; retrying (repeats are summarised once a minute)`;
    } else if (event.error.code !== this.code) {
      // A change of kind (the network, then NODE_NOT_FOUND once it is back); a new wording of the same kind is not news.
      text = `${reason} (${event.consecutive} failures in a row since ${clock(this.since)})`;
    } else if (now - this.shownAt >= this.everyMs) {
      text = `still failing: ${event.consecutive} in a row since ${clock(this.since)} (${reason})`;
    }
    this.code = event.error.code;
    if (text !== undefined) this.shownAt = now;
    return text;
  }

  recovered(event: KeepaliveRecoveredEvent): string {
    const since = this.since === undefined ? '' : ` since ${clock(this.since)}`;
    this.since = undefined;
    this.code = '';
    return `ok again after ${event.failures} failure${event.failures === 1 ? '' : 's'}${since}`;
  }
}

/** A readable line per event, or undefined for events not worth a line (the full list, routine refreshes, repeated failures). */
function eventText(event: ClientEvent, keepalives: KeepaliveReport, self: Self | undefined): string | undefined {
  const at = new Date().toISOString();
  const line = (kind: string, text: string) => `${at}  ${kind.padEnd(15)} ${text}`;
  switch (event.type) {
    case 'registered':
    case 'updated':
      return line(event.type, `${event.node.nodeId}  rev ${event.revision}  ${metadataText(event.node.metadata)}`.trimEnd());
    case 'down':
      return line('down', `${event.node.nodeId}  rev ${event.revision}  ${event.reason ?? 'reason unknown: the server no longer has the record'}${event.source === 'resync' ? '  (while this process was not running)' : ''}`);
    case 'connected':
      return line('connected', event.bound ? 'bound to this node' : 'watching');
    case 'disconnected':
      return line('disconnected', `${event.reason}; reconnecting`);
    case 'resynced':
      return event.reason === 'refresh' ? undefined : line('resynced', `${event.nodes} node${event.nodes === 1 ? '' : 's'} at revision ${event.revision} (${event.reason}${event.reset ? ', server state was reset' : ''})`);
    case 'keepaliveFailed': {
      const text = keepalives.failed(event);
      return text === undefined ? undefined : line('keepaliveFailed', text);
    }
    case 'keepaliveRecovered':
      return line('keepaliveRecovered', keepalives.recovered(event));
    case 'lost':
      if (event.reason === 'unauthorized') return line('lost', `the token was refused (${event.error?.code ?? 'UNAUTHORIZED'}: ${event.error?.message ?? ''}); stopping`);
      return line('lost', event.reason === 'superseded' ? 'a newer incarnation of this node registered' : 'the lease lapsed; registering again when possible');
    case 'warning':
      return line('warning', event.message);
    case 'closed':
      return self && event.deregistered ? line('deregistered', `${self.nodeId}  (this agent, pid ${self.pid})`) : undefined;
    case 'change':
      return undefined;
  }
}

// ─── Commands ──────────────────────────────────────────────────────────────

export const nodesCommand: Command = {
  summary: 'list the healthy nodes of a cluster',
  help: `Usage: roster nodes <cluster> [--all] [--json] [target]

Lists the healthy nodes of <cluster> (GET /v1/clusters/<cluster>/nodes).

  --all              also list DOWN nodes the server still retains
  --json             print the server's answer as JSON
  -h, --help         show this help

${TARGET_HELP}
`,
  async run(argv) {
    const parsed = parse(argv, { ...TARGET_OPTIONS, all: { type: 'boolean' }, json: { type: 'boolean' } }, ['cluster']);
    if (parsed.help) return showHelp(this);
    const clusterId = checkId('cluster', parsed.args[0] as string);
    const target = await resolveTarget(parsed.values);
    const list = await listNodes({ httpUrl: target.httpUrl, token: target.token, clusterId, all: parsed.values.all ?? false });
    if (parsed.values.json) {
      out(JSON.stringify(list, null, 2));
      return 0;
    }
    if (list.revision === 0) {
      // Every event takes a revision: at 0, no node ever registered here. A typo is the likelier story than an empty cluster.
      out(`cluster ${clusterId} has never had a node at ${target.httpUrl} (revision 0): is the name right?`);
      return 0;
    }
    if (list.nodes.length === 0) {
      out(`no ${parsed.values.all ? '' : 'healthy '}nodes in cluster ${clusterId} (revision ${list.revision})`);
      return 0;
    }
    const now = Date.now();
    const rows = [['NODE', 'STATUS', 'REVISION', 'LEASE', 'LAST KEEPALIVE', 'METADATA']];
    for (const node of list.nodes) {
      const status = node.status === 'DOWN' && node.downReason ? `DOWN (${node.downReason})` : node.status;
      rows.push([node.nodeId, status, String(node.revision), `${node.leaseSeconds}s`, ago(node.lastKeepaliveAt, now), metadataText(node.metadata)]);
    }
    for (const row of table(rows)) out(row);
    return 0;
  },
};

interface RunOptions {
  json: boolean;
  /** Settles with an exit code to stop with (a superseded node). */
  until?: Promise<number>;
  /** The agent's node: its own registration and deregistration get a line. */
  self?: Self;
  /** Stop (and deregister) when the process that started this one ends. */
  endWithStarter?: boolean;
}

/** The signals that stop `watch` and `agent` cleanly; a second one exits at once. */
const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

/** Runs `client` until a signal (or `until`, or the starter's end), printing its events; stops it cleanly. */
async function runClient(name: string, client: RosterClient, options: RunOptions): Promise<number> {
  const { json, self } = options;
  const keepalives = new KeepaliveReport();
  let announced = false;
  const print = (event: ClientEvent) => {
    // The agent's own registration: once the first sync put its record in the cache.
    if (self && !announced && event.type === 'resynced') {
      const node = client.node(self.nodeId);
      if (node) {
        announced = true;
        if (json) out(JSON.stringify({ type: 'registered', at: new Date().toISOString(), self: { pid: self.pid }, nodeId: node.nodeId, revision: node.revision, node }));
        else {
          const what = [node.nodeId, `rev ${node.revision}`, metadataText(node.metadata), `(this agent, pid ${self.pid}, lease ${node.leaseSeconds}s)`].filter((part) => part !== '');
          out(`${new Date().toISOString()}  ${'registered'.padEnd(15)} ${what.join('  ')}`);
        }
        process.stderr.write(
          `roster agent: this agent is pid ${self.pid}. Ctrl-C, or SIGTERM to pid ${self.pid}, deregisters ${self.clusterId}/${self.nodeId} and exits; so does the end of the process that started it.\n`,
        );
      }
    }
    if (json) out(JSON.stringify(eventJson(event)));
    else {
      const text = eventText(event, keepalives, self);
      if (text !== undefined) out(text);
    }
  };
  // Listen before start() so the events of the start itself (a cache file, the first sync) are printed.
  const iterator = client.events();
  const printing = (async () => {
    for await (const event of iterator) print(event);
  })();

  const stopped = new Promise<number>((resolve) => {
    const onSignal = () => {
      for (const signal of Object.keys(STOP_SIGNALS)) process.off(signal, onSignal);
      // A second signal while stopping exits at once.
      for (const [signal, code] of Object.entries(STOP_SIGNALS)) process.once(signal, () => process.exit(code));
      resolve(0);
    };
    for (const signal of Object.keys(STOP_SIGNALS)) process.on(signal, onSignal);
    if (options.endWithStarter) {
      watchStarters(startersOf(), (starter) => {
        process.stderr.write(`roster ${name}: the process that started it (${starter.name}, pid ${starter.pid}) ended; stopping\n`);
        onSignal();
      });
    }
  });

  try {
    await Promise.race([client.start(), stopped]);
  } catch (err) {
    await iterator.return?.();
    await printing;
    throw err;
  }
  // A refused token stops the client by itself (terminal): exit 1 with the reason — the one
  // `roster nodes` would give — never retry forever.
  const refused = new Promise<number>((resolve) => {
    client.on('closed', (event) => {
      if (!event.error) return;
      process.stderr.write(`roster ${name}: ${event.error.message}\n`);
      resolve(1);
    });
  });
  const code = await Promise.race(options.until ? [stopped, options.until, refused] : [stopped, refused]);
  await client.stop();
  await printing;
  return code;
}

/**
 * A WebSocket URL without a path on the HTTP URL's own host and port: the
 * local runtime's layout, whose WebSocket API is at /ws. (On AWS the two APIs
 * have hosts of their own, and a custom domain cannot map both to its root.)
 * Caught here, before anything registers.
 */
function checkWebSocketPath(target: Target): void {
  const http = new URL(target.httpUrl);
  const ws = new URL(target.wsUrl);
  if (ws.host !== http.host || (ws.pathname !== '/' && ws.pathname !== '')) return;
  const wanted = new URL(ws.href);
  wanted.pathname = '/ws';
  wanted.search = '';
  throw new UsageError(`the WebSocket URL ${ws.origin} has no path: the local runtime's WebSocket API is ${wanted.href} (on AWS, the stack's WebSocketUrl output, which ends with its stage)`);
}

export const watchCommand: Command = {
  summary: 'print membership events of a cluster as they happen',
  help: `Usage: roster watch <cluster> [--json] [target]

Subscribes to <cluster> and prints one line per event (registered, updated,
down, and the connection's status) until interrupted (SIGINT, SIGTERM or SIGHUP).

  --json             one JSON object per line
  -h, --help         show this help

${TARGET_HELP}
`,
  async run(argv) {
    const parsed = parse(argv, { ...TARGET_OPTIONS, json: { type: 'boolean' } }, ['cluster']);
    if (parsed.help) return showHelp(this);
    const clusterId = checkId('cluster', parsed.args[0] as string);
    const target = await resolveTarget(parsed.values);
    checkWebSocketPath(target);
    const client = new RosterClient({ httpUrl: target.httpUrl, wsUrl: target.wsUrl, token: target.token, clusterId });
    return runClient('watch', client, { json: parsed.values.json ?? false });
  },
};

export const agentCommand: Command = {
  summary: 'run a node: register, keep alive, deregister on SIGINT/SIGTERM',
  help: `Usage: roster agent <cluster> <node> [--lease S] [--meta k=v ...] [options] [target]

Registers <node> in <cluster>, keeps it alive, binds it to a WebSocket
connection and prints the cluster's events, until SIGINT (Ctrl-C), SIGTERM or
SIGHUP reaches this process, or the process that started it ends; then it
deregisters the node and exits 0. It prints its own registration (with its
pid) and deregistration. Exits 3 if a newer incarnation of the node takes over.

  --lease S          lease in seconds, ${LEASE_MIN_SECONDS}..${LEASE_MAX_SECONDS} (default: the server's, ${DEFAULT_LEASE_SECONDS})
  --meta k=v         metadata; repeat for more keys
  --keepalive-ms MS  time between keepalives (default: a third of the lease)
  --cache-file FILE  keep the last confirmed list in FILE and start from it
                     when the information center is unreachable
  --outlive-parent   keep running when the process that started it ends
                     (nohup, a shell's & and disown)
  --json             one JSON object per line
  -h, --help         show this help

${TARGET_HELP}
`,
  async run(argv) {
    const parsed = parse(
      argv,
      {
        ...TARGET_OPTIONS,
        lease: { type: 'string' },
        meta: { type: 'string', multiple: true },
        'keepalive-ms': { type: 'string' },
        'cache-file': { type: 'string' },
        'outlive-parent': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      ['cluster', 'node'],
    );
    if (parsed.help) return showHelp(this);
    const clusterId = checkId('cluster', parsed.args[0] as string);
    const nodeId = checkId('node', parsed.args[1] as string);
    const leaseSeconds = wholeNumber('lease', parsed.values.lease, LEASE_MIN_SECONDS, LEASE_MAX_SECONDS);
    const keepaliveIntervalMs = positiveNumber('keepalive-ms', parsed.values['keepalive-ms'], false);
    const metadata = keyValues('meta', parsed.values.meta);
    const target = await resolveTarget(parsed.values);
    checkWebSocketPath(target);
    const client = new RosterClient({
      httpUrl: target.httpUrl,
      wsUrl: target.wsUrl,
      token: target.token,
      clusterId,
      nodeId,
      metadata,
      leaseSeconds,
      keepaliveIntervalMs,
      cacheFile: parsed.values['cache-file'],
    });
    const superseded = new Promise<number>((resolve) => {
      client.on('lost', (event) => {
        if (event.reason !== 'superseded') return;
        process.stderr.write(`roster agent: ${event.error?.message ?? 'a newer incarnation of this node registered'}; exiting\n`);
        resolve(3);
      });
    });
    return runClient('agent', client, {
      json: parsed.values.json ?? false,
      until: superseded,
      self: { clusterId, nodeId, pid: process.pid },
      endWithStarter: !(parsed.values['outlive-parent'] ?? false),
    });
  },
};

/** The three, by name. */
export const NODE_COMMANDS: Record<string, Command> = { nodes: nodesCommand, watch: watchCommand, agent: agentCommand };
