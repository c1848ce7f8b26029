/**
 * The Roster console: a single page with two views chosen by the URL hash
 * (`#/` every cluster, `#/clusters/{id}` one cluster), kept live by one
 * WebSocket connection.
 *
 * The page is served by the API itself (`GET /` and `/console`), so every
 * request is same-origin; the WebSocket URL comes from the page (the server
 * writes it into `<meta name="roster-ws-url">`).
 */
import type { MembershipEvent } from '@roster/contract';
import { isValidId } from '@roster/contract';
import { Api, ApiError, AuthRequiredError, TokenStore } from './api.ts';
import { ClusterView } from './cluster-view.ts';
import { ClustersView } from './clusters-view.ts';
import { Live } from './live.ts';
import { ServerClock, formatDuration } from './time.ts';
import { Announcer, Banner, clockTime, h, setText } from './ui.ts';
import type { AppContext, View } from './view.ts';

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}

/** The WebSocket URL the server wrote into the page; without one, `/ws` on this host (the local runtime's layout). */
function webSocketUrl(): string {
  const configured = document.querySelector<HTMLMetaElement>('meta[name="roster-ws-url"]')?.content ?? '';
  if (/^wss?:\/\//.test(configured)) return configured;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

const HISTORY_SIZE = 200;

interface Health {
  sweeper: { lastSweepAt: string | null; lagSeconds?: number };
}

const isHealth = (v: unknown): v is Health =>
  typeof v === 'object' && v !== null && typeof (v as { sweeper?: unknown }).sweeper === 'object' && (v as { sweeper: unknown }).sweeper !== null;

/** The footer's name for the sweeper, with what it does. */
const SWEEPER = 'the sweeper (it marks nodes whose lease ran out DOWN)';

/** A view for hashes that name nothing. */
function notFoundView(hash: string): View {
  const heading = h('h1', { tabindex: -1 }, 'Nothing here');
  const noop = () => undefined;
  return {
    root: h('div', { class: 'view' }, heading, h('p', {}, `No view for “${hash.slice(0, 100)}”. `, h('a', { href: '#/' }, 'See every cluster'), '.')),
    heading,
    title: 'Not found · Roster',
    start: noop,
    destroy: noop,
    tick: noop,
    subscribed: noop,
    reconnected: noop,
    event: noop,
    problem: noop,
    reload: noop,
  };
}

class App implements AppContext {
  readonly clock = new ServerClock();
  readonly tokens = new TokenStore();
  readonly api = new Api(this.tokens, this.clock);
  readonly announcer = new Announcer(byId('announcer'));
  readonly live: Live;
  private readonly wsUrl = webSocketUrl();
  private readonly banner = new Banner(byId('banner'));
  private readonly main = byId('main');
  private readonly conn = byId('conn');
  private readonly signOutButton = byId('sign-out') as HTMLButtonElement;
  private readonly footer = byId('status-line');
  private view: View | undefined;
  /** When the live connection was lost; undefined while it is fine. */
  private lostAt: number | undefined;
  private awaitingResync = false;
  private lastHealthAt = 0;
  /** Every event once (at-least-once delivery repeats some), newest last. */
  private readonly history: MembershipEvent[] = [];
  private readonly historyKeys = new Set<string>();
  private sweeperText = '';

  constructor() {
    this.live = new Live({
      url: () => {
        const url = new URL(this.wsUrl);
        // Browsers cannot set headers on a WebSocket: the query string is the only way (API Gateway's access logs omit it).
        const token = this.tokens.get();
        if (token !== undefined) url.searchParams.set('token', token);
        return url.href;
      },
      opened: (reconnect) => {
        this.setConnection('open', 'Live');
        if (this.lostAt !== undefined) {
          this.awaitingResync = true;
          this.banner.show('resyncing', 'Reconnected. Resyncing…');
        }
        if (reconnect) this.view?.reconnected();
      },
      subscribed: (clusterId) => this.view?.subscribed(clusterId),
      event: (event) => {
        this.clock.sampleEvent(event.at);
        this.remember(event);
        this.view?.event(event);
      },
      dropped: ({ everOpened }) => {
        this.awaitingResync = false;
        this.setConnection('lost', 'Reconnecting…');
        if (this.lostAt !== undefined && this.banner.state === 'lost') return;
        this.lostAt ??= Date.now();
        // One sentence per outage: a live region that changes on every retry would chatter.
        this.banner.show(
          'lost',
          everOpened
            ? `Live connection lost at ${clockTime(this.lostAt)}. Reconnecting… The tables show the last state known.`
            : 'Cannot open the live connection to Roster. Retrying…',
        );
      },
      serverError: (message) => this.view?.problem(`The server refused a request: ${message}`),
    });
  }

  start(): void {
    byId('skip').addEventListener('click', (e) => {
      e.preventDefault();
      this.main.focus();
    });
    this.signOutButton.addEventListener('click', () => this.signOut());
    window.addEventListener('hashchange', () => this.route(true));
    window.addEventListener('online', () => this.live.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.tick();
    });
    window.setInterval(() => {
      if (document.visibilityState === 'visible') this.tick();
    }, 1000);
    this.updateSignOut();
    this.live.start();
    this.route(false);
    this.tick();
  }

  recentEvents(clusterId?: string): readonly MembershipEvent[] {
    return clusterId === undefined ? this.history : this.history.filter((e) => e.clusterId === clusterId);
  }

  private remember(event: MembershipEvent): void {
    const key = `${event.clusterId}/${event.node.nodeId}@${event.revision}`;
    if (this.historyKeys.has(key)) return;
    this.historyKeys.add(key);
    this.history.push(event);
    if (this.history.length > HISTORY_SIZE) {
      const dropped = this.history.shift();
      if (dropped) this.historyKeys.delete(`${dropped.clusterId}/${dropped.node.nodeId}@${dropped.revision}`);
    }
  }

  synced(): void {
    if (!this.awaitingResync || !this.live.allSubscribed()) return;
    this.awaitingResync = false;
    this.lostAt = undefined;
    this.banner.show('resynced', `Reconnected and resynced at ${clockTime(Date.now())}.`);
  }

  failed(error: unknown, view: View): void {
    if (view !== this.view) return;
    if (error instanceof AuthRequiredError) {
      this.askForToken(error.hadToken ? `That token was not accepted: ${error.message}` : undefined);
    } else if (error instanceof ApiError && error.status === 0) {
      view.problem('Roster did not answer. The console keeps trying.');
    } else if (error instanceof ApiError && error.status === 403) {
      view.problem(`Your token does not allow this (${error.message}). Open a cluster it may read by its id.`);
    } else if (error instanceof ApiError) {
      view.problem(`Roster answered ${error.status} ${error.code}: ${error.message}`);
    } else {
      view.problem('Something went wrong while reading from Roster.');
    }
  }

  private route(navigated: boolean): void {
    const hash = location.hash;
    this.view?.destroy();
    let next: View;
    const match = /^#\/clusters\/([^/?#]+)$/.exec(hash);
    const clusterId = match?.[1] === undefined ? undefined : safeDecode(match[1]);
    if (hash === '' || hash === '#' || hash === '#/') next = new ClustersView(this);
    else if (clusterId !== undefined && isValidId(clusterId)) next = new ClusterView(this, clusterId);
    else next = notFoundView(hash);
    this.view = next;
    this.main.replaceChildren(next.root);
    document.title = next.title;
    next.start();
    // After a navigation, focus the new heading so screen readers announce the view.
    if (navigated) next.heading.focus();
  }

  private askForToken(message: string | undefined): void {
    this.view?.destroy();
    this.view = undefined;
    // Without a token the WebSocket would only be refused, again and again: wait for one.
    this.live.suspend();
    this.lostAt = undefined;
    this.awaitingResync = false;
    this.banner.hide();
    this.setConnection('lost', 'Signed out');
    const input = h('input', {
      id: 'token',
      name: 'token',
      type: 'password',
      required: true,
      autocomplete: 'off',
      spellcheck: 'false',
      'aria-describedby': message ? 'token-problem token-source token-help' : 'token-source token-help',
    });
    const heading = h('h1', { id: 'signin-title', tabindex: -1 }, 'Sign in');
    const form = h(
      'form',
      { class: 'signin-form' },
      h('label', { for: 'token' }, 'Token'),
      input,
      h('button', { type: 'submit' }, 'Sign in'),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (token === '') return;
      input.value = '';
      this.tokens.set(token);
      this.updateSignOut();
      this.live.restart();
      this.route(true);
    });
    this.main.replaceChildren(
      h(
        'section',
        { class: 'view signin', 'aria-labelledby': 'signin-title' },
        heading,
        message ? h('p', { id: 'token-problem', class: 'problem', role: 'alert' }, message) : null,
        // A first-time user does not know where tokens come from: say it where they are asked for one.
        h(
          'p',
          { id: 'token-source' },
          'This Roster requires a token. Ask whoever runs it, or make one where it runs: ',
          h('code', {}, 'npm start -- --auth'),
          ' prints an admin token when it starts (the line “Admin token …”), and ',
          h('code', {}, 'npx roster token create'),
          ' signs others (',
          h('code', {}, '--data-dir DIR'),
          ' for a local one started with that directory, ',
          h('code', {}, '--outputs cdk-outputs.json'),
          ' for a stack on AWS).',
        ),
        h(
          'p',
          { id: 'token-help' },
          'The console keeps the token for this browser tab only (session storage) and sends it with each request; it never appears in the page address.',
        ),
        form,
      ),
    );
    document.title = 'Sign in · Roster';
    input.focus();
  }

  private signOut(): void {
    this.tokens.clear();
    this.updateSignOut();
    this.live.restart();
    this.route(true);
  }

  private updateSignOut(): void {
    this.signOutButton.hidden = this.tokens.get() === undefined;
  }

  private setConnection(state: 'open' | 'lost', text: string): void {
    this.conn.dataset.state = state;
    setText(this.conn, text);
  }

  private tick(): void {
    this.view?.tick();
    if (Date.now() - this.lastHealthAt > 30_000) {
      this.lastHealthAt = Date.now();
      void this.readHealth();
    }
    const offset = this.clock.offset;
    const skew = Math.abs(offset) >= 2000 ? ` · this browser's clock is ${formatDuration(Math.abs(offset))} ${offset > 0 ? 'behind' : 'ahead of'} the server's` : '';
    setText(this.footer, `WebSocket ${new URL(this.wsUrl).host}${this.sweeperText}${skew}`);
  }

  private async readHealth(): Promise<void> {
    try {
      const health = await this.api.get('/v1/health', isHealth);
      const lag = health.sweeper.lagSeconds;
      // "Lag" alone meant nothing to a reader: say what the sweeper does and when it last did it.
      this.sweeperText =
        lag === undefined
          ? ` · ${SWEEPER} has not run yet`
          : ` · ${SWEEPER} last ran ${lag < 1 ? 'under 1 s' : formatDuration(lag * 1000)} before ${clockTime(Date.now())}`;
    } catch {
      this.sweeperText = '';
    }
  }
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

new App().start();
