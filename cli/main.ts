/**
 * The `roster` command line (run by bin/roster.js).
 *
 * The CLI stands above everything else in the repository: it uses the SDK
 * (@roster/client, by its package name, as users do), the bench, the local
 * runtime and the token helpers, and nothing imports it.
 *
 * Each command is an entry of COMMANDS: a one-line summary, its help text,
 * and a function that returns the exit code (`Command`, from kit.ts).
 * A command of its own module is added there with one line; anything not in
 * COMMANDS prints the usage and exits 2.
 * Errors are one line on stderr: a usage error exits 2, anything else 1.
 */
import { listNodes, RosterClient, RosterClientError, type ClientEvent } from '@roster/client';
import rootPackage from '../package.json' with { type: 'json' };
import { benchCommand } from './bench-command.ts';
import { capacityCommand } from './capacity-command.ts';
import { costCommand } from './cost-command.ts';
import { robustnessCommand } from './robustness-command.ts';
import { tokenCommand } from './token-command.ts';
import {
  CliError,
  type Command,
  TARGET_HELP,
  TARGET_OPTIONS,
  UsageError,
  ago,
  checkId,
  metadataOf,
  metadataText,
  out,
  parse,
  positiveNumber,
  resolveTarget,
  showHelp,
  table,
} from './kit.ts';

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
      return { type: event.type, at, ...(event.error ? { error: { code: event.error.code, message: event.error.message } } : {}) };
    case 'registered':
    case 'updated':
    case 'down':
      return { ...event, at, nodeId: event.node.nodeId };
    default:
      return { ...event, at };
  }
}

/** A readable line per event, or undefined for events not worth a line (the full list, routine refreshes). */
function eventText(event: ClientEvent): string | undefined {
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
    case 'keepaliveFailed':
      return line('keepaliveFailed', `${event.error.code}: ${event.error.message}`);
    case 'lost':
      if (event.reason === 'unauthorized') return line('lost', `the token was refused (${event.error?.code ?? 'UNAUTHORIZED'}: ${event.error?.message ?? ''}); stopping`);
      return line('lost', event.reason === 'superseded' ? 'a newer incarnation of this node registered' : 'the lease lapsed; registering again when possible');
    case 'warning':
      return line('warning', event.message);
    case 'change':
    case 'closed':
      return undefined;
  }
}

// ─── Commands ──────────────────────────────────────────────────────────────

const nodesCommand: Command = {
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

/** Runs `client` until SIGINT/SIGTERM (or `until` settles), printing its events; stops it cleanly. */
async function runClient(name: string, client: RosterClient, json: boolean, until?: Promise<number>): Promise<number> {
  const print = (event: ClientEvent) => {
    if (json) out(JSON.stringify(eventJson(event)));
    else {
      const text = eventText(event);
      if (text !== undefined) out(text);
    }
  };
  // Listen before start() so the events of the start itself (a cache file, the first sync) are printed.
  const iterator = client.events();
  const printing = (async () => {
    for await (const event of iterator) print(event);
  })();

  const signalled = new Promise<number>((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A second signal while stopping exits at once.
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(0);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  try {
    await Promise.race([client.start(), signalled]);
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
  const code = await Promise.race(until ? [signalled, until, refused] : [signalled, refused]);
  await client.stop();
  await printing;
  return code;
}

const watchCommand: Command = {
  summary: 'print membership events of a cluster as they happen',
  help: `Usage: roster watch <cluster> [--json] [target]

Subscribes to <cluster> and prints one line per event (registered, updated,
down, and the connection's status) until interrupted.

  --json             one JSON object per line
  -h, --help         show this help

${TARGET_HELP}
`,
  async run(argv) {
    const parsed = parse(argv, { ...TARGET_OPTIONS, json: { type: 'boolean' } }, ['cluster']);
    if (parsed.help) return showHelp(this);
    const clusterId = checkId('cluster', parsed.args[0] as string);
    const target = await resolveTarget(parsed.values);
    const client = new RosterClient({ httpUrl: target.httpUrl, wsUrl: target.wsUrl, token: target.token, clusterId });
    return runClient('watch', client, parsed.values.json ?? false);
  },
};

const agentCommand: Command = {
  summary: 'run a node: register, keep alive, deregister on SIGINT/SIGTERM',
  help: `Usage: roster agent <cluster> <node> [--lease S] [--meta k=v ...] [options] [target]

Registers <node> in <cluster>, keeps it alive, binds it to a WebSocket
connection and prints the cluster's events, until SIGINT or SIGTERM; then it
deregisters the node and exits 0. Exits 3 if a newer incarnation of the node
takes over.

  --lease S          lease in seconds, 2..3600 (default: the server's, 15)
  --meta k=v         metadata; repeat for more keys
  --keepalive-ms MS  time between keepalives (default: a third of the lease)
  --cache-file FILE  keep the last confirmed list in FILE and start from it
                     when the information center is unreachable
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
        json: { type: 'boolean' },
      },
      ['cluster', 'node'],
    );
    if (parsed.help) return showHelp(this);
    const clusterId = checkId('cluster', parsed.args[0] as string);
    const nodeId = checkId('node', parsed.args[1] as string);
    const target = await resolveTarget(parsed.values);
    const client = new RosterClient({
      httpUrl: target.httpUrl,
      wsUrl: target.wsUrl,
      token: target.token,
      clusterId,
      nodeId,
      metadata: metadataOf(parsed.values.meta),
      leaseSeconds: positiveNumber('lease', parsed.values.lease, true),
      keepaliveIntervalMs: positiveNumber('keepalive-ms', parsed.values['keepalive-ms'], false),
      cacheFile: parsed.values['cache-file'],
    });
    const superseded = new Promise<number>((resolve) => {
      client.on('lost', (event) => {
        if (event.reason !== 'superseded') return;
        process.stderr.write(`roster agent: ${event.error?.message ?? 'a newer incarnation of this node registered'}; exiting\n`);
        resolve(3);
      });
    });
    return runClient('agent', client, parsed.values.json ?? false, superseded);
  },
};

const serveCommand: Command = {
  summary: 'run the information center on this machine (roster serve --help)',
  help: '',
  async run(argv) {
    // Loaded only here: the server side pulls in the AWS SDK, which the client commands never need.
    const { serve } = await import('../local/main.ts');
    await serve(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  },
};

/** Every command. */
const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  nodes: nodesCommand,
  watch: watchCommand,
  agent: agentCommand,
  bench: benchCommand,
  cost: costCommand,
  capacity: capacityCommand,
  robustness: robustnessCommand,
  token: tokenCommand,
};

function usage(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((name) => `  ${name.padEnd(width)}  ${COMMANDS[name]?.summary ?? ''}`);
  return `Usage: roster <command> [arguments] [flags]

Commands:
${lines.join('\n')}

Run "roster <command> --help" for a command's flags; "roster --version" for the version.
`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    out(`roster ${rootPackage.version} (node ${process.version})`);
    return 0;
  }
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    if (topic) return topic === serveCommand ? topic.run(['--help']) : showHelp(topic);
    (name === undefined ? process.stderr : process.stdout).write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(`roster: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`roster ${name}: ${err.message}\nRun "roster ${name} --help" for usage.\n`);
      return 2;
    }
    if (err instanceof CliError || err instanceof RosterClientError) {
      process.stderr.write(`roster ${name}: ${err.message}\n`);
      return err instanceof CliError ? err.exitCode : 1;
    }
    process.stderr.write(`roster ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// Idle keep-alive sockets of fetch (and the server's, for `serve`) must not hold the process open.
process.exit(code);
