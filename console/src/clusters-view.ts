/**
 * Every cluster with its UP/DOWN counts and the time of its last event.
 *
 * There is no cluster-wide event stream, so the view subscribes to each
 * listed cluster (the first 100) over the one WebSocket. An event updates
 * its cluster's revision and last-event time at once and asks for the list
 * again (debounced) for the counts — see `ClusterDirectory` for why. A slow
 * 30 s reconcile finds clusters created since.
 */
import type { MembershipEvent } from '@roster/contract';
import { isValidId } from '@roster/contract';
import { MAX_SUBSCRIPTIONS } from './live.ts';
import { ClusterDirectory, isClusterList, type ClusterSummary } from './model.ts';
import { Feed, ago, clusterHref, describeEvent, h, setText, timeElement } from './ui.ts';
import { RECONCILE_MS, RETRY_MS, ViewReads, type AppContext, type View } from './view.ts';

/** Events of a busy cluster arrive in bursts: one list read per second is plenty for counts. */
const EVENT_REFRESH_MS = 1_000;
const SUBSCRIBED_REFRESH_MS = 300;
/** A list older than an event seen is read again, but only this many times in a row. */
const MAX_FOLLOWUPS = 3;

interface Row {
  tr: HTMLTableRowElement;
  up: HTMLElement;
  down: HTMLElement;
  revision: HTMLElement;
  last: HTMLElement;
  summary: ClusterSummary;
}

export class ClustersView implements View {
  readonly root: HTMLElement;
  readonly heading = h('h1', { tabindex: -1 }, 'Clusters');
  readonly title = 'Clusters · Roster';
  private readonly directory = new ClusterDirectory();
  private readonly rows = new Map<string, Row>();
  private readonly tbody = h('tbody');
  private readonly feed: Feed;
  private readonly summaryEl = h('p', { class: 'summary' }, 'Loading…');
  private readonly problemEl = h('p', { class: 'problem', role: 'alert', hidden: true });
  private readonly noteEl = h('p', { class: 'muted', hidden: true });
  private readonly emptyEl = h(
    'p',
    { class: 'muted', hidden: true },
    'No clusters yet. A cluster appears once a node registers, e.g. ',
    h('code', {}, 'npx roster agent backup node-1'),
    '.',
  );
  /** Its `behind`: the last read failed (or is under way), the counts may be behind. */
  private readonly refresh: ViewReads;
  private refreshTimer: number | undefined;
  private lastFetchAt = 0;
  private followups = 0;
  private destroyed = false;

  constructor(private readonly app: AppContext) {
    this.feed = new Feed(true, app.recentEvents());
    this.refresh = new ViewReads(app, this, () => this.fetch());
    const input = h('input', {
      id: 'open-cluster',
      name: 'clusterId',
      required: true,
      pattern: '[A-Za-z0-9._\\-]{1,64}',
      autocomplete: 'off',
      spellcheck: 'false',
      'aria-describedby': 'open-cluster-help',
    });
    const form = h(
      'form',
      { class: 'open-cluster' },
      h('label', { for: 'open-cluster' }, 'Open a cluster by id'),
      input,
      h('button', { type: 'submit' }, 'Open'),
      h('small', { id: 'open-cluster-help', class: 'muted' }, '1–64 characters of A–Z a–z 0–9 . _ -'),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const id = input.value.trim();
      if (isValidId(id)) location.hash = clusterHref(id);
    });
    this.root = h(
      'div',
      { class: 'view view-clusters' },
      this.heading,
      this.summaryEl,
      this.problemEl,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'clusters' },
          h('caption', { class: 'visually-hidden' }, 'Clusters with their UP and DOWN node counts'),
          h(
            'thead',
            {},
            h('tr', {}, ...['Cluster', 'UP', 'DOWN', 'Revision', 'Last event'].map((label) => h('th', { scope: 'col' }, label))),
          ),
          this.tbody,
        ),
      ),
      this.emptyEl,
      this.noteEl,
      form,
      this.feed.root,
    );
  }

  start(): void {
    this.refresh.run();
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.refreshTimer);
  }

  reload(): void {
    this.refresh.run();
  }

  reconnected(): void {
    // The server may have restarted with its revisions reset: what was seen before says nothing now.
    this.directory.forgetSeen();
  }

  subscribed(): void {
    this.schedule(SUBSCRIBED_REFRESH_MS);
  }

  event(event: MembershipEvent): void {
    if (!this.directory.noteEvent(event)) return;
    const row = this.rows.get(event.clusterId);
    const summary = this.directory.get(event.clusterId);
    if (row && summary) this.renderRow(row, summary);
    this.feed.add(event);
    this.app.announcer.say(describeEvent(event, true));
    this.schedule(EVENT_REFRESH_MS);
  }

  problem(text: string | undefined): void {
    this.problemEl.hidden = text === undefined;
    setText(this.problemEl, text ?? '');
  }

  tick(): void {
    const now = this.app.clock.now();
    for (const row of this.rows.values()) this.renderLast(row, now);
    const since = Date.now() - this.lastFetchAt;
    if (since > RECONCILE_MS || (this.refresh.behind && since > RETRY_MS)) this.refresh.run();
  }

  /** Reads the list after `ms`, unless a read is already scheduled sooner. */
  private schedule(ms: number): void {
    if (this.refreshTimer !== undefined) return;
    const wait = Math.max(ms, this.lastFetchAt + EVENT_REFRESH_MS - Date.now());
    this.refreshTimer = window.setTimeout(() => {
      this.refreshTimer = undefined;
      this.refresh.run();
    }, wait);
  }

  private async fetch(): Promise<void> {
    const subscribed = this.app.live.allSubscribed();
    this.lastFetchAt = Date.now();
    this.refresh.behind = true;
    const { clusters } = await this.app.api.get('/v1/clusters', isClusterList);
    if (this.destroyed) return;
    this.refresh.behind = false;
    const behind = this.directory.replace(clusters);
    const list = this.directory.list();
    this.app.live.follow(list.map((c) => c.clusterId));
    this.render(list);
    this.problem(undefined);
    if (behind && this.followups < MAX_FOLLOWUPS) {
      this.followups++;
      this.schedule(EVENT_REFRESH_MS);
    } else this.followups = 0;
    if (subscribed) this.app.synced();
  }

  private render(list: ClusterSummary[]): void {
    const present = new Set(list.map((c) => c.clusterId));
    for (const [id, row] of this.rows) {
      if (!present.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    list.forEach((summary, index) => {
      let row = this.rows.get(summary.clusterId);
      if (!row) {
        row = this.createRow(summary);
        this.rows.set(summary.clusterId, row);
      }
      this.renderRow(row, summary);
      const at = this.tbody.children[index];
      if (at !== row.tr) this.tbody.insertBefore(row.tr, at ?? null);
    });
    const up = list.reduce((n, c) => n + c.up, 0);
    const down = list.reduce((n, c) => n + c.down, 0);
    setText(this.summaryEl, `${list.length} ${list.length === 1 ? 'cluster' : 'clusters'} · ${up} UP · ${down} DOWN`);
    this.emptyEl.hidden = list.length > 0;
    this.noteEl.hidden = list.length <= MAX_SUBSCRIPTIONS;
    setText(
      this.noteEl,
      `Live updates follow the first ${MAX_SUBSCRIPTIONS} clusters (a WebSocket connection's limit); the others are read again every ${RECONCILE_MS / 1000} s.`,
    );
  }

  private createRow(summary: ClusterSummary): Row {
    const cell = (label: string, cls: string) => h('td', { 'data-label': label, class: cls });
    const row: Row = {
      tr: h('tr', { 'data-cluster-id': summary.clusterId }),
      up: cell('UP', 'c-up num'),
      down: cell('DOWN', 'c-down num'),
      revision: cell('Revision', 'c-revision num'),
      last: cell('Last event', 'c-last'),
      summary,
    };
    row.tr.append(
      h('th', { scope: 'row', class: 'c-cluster' }, h('a', { href: clusterHref(summary.clusterId), class: 'id' }, summary.clusterId)),
      row.up,
      row.down,
      row.revision,
      row.last,
    );
    return row;
  }

  private renderRow(row: Row, summary: ClusterSummary): void {
    row.summary = summary;
    setText(row.up, String(summary.up));
    setText(row.down, String(summary.down));
    row.down.classList.toggle('has-down', summary.down > 0);
    setText(row.revision, String(summary.revision));
    this.renderLast(row, this.app.clock.now());
  }

  private renderLast(row: Row, now: number): void {
    const at = row.summary.lastEventAt;
    if (at === undefined) {
      setText(row.last, '—');
      return;
    }
    const text = ago(Date.parse(at), now);
    const current = row.last.firstChild;
    if (current instanceof HTMLTimeElement && current.dateTime === at) setText(current, text);
    else row.last.replaceChildren(timeElement(at, text));
  }
}
