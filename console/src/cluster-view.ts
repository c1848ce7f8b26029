/**
 * One cluster: the node table, kept live from the WebSocket by the SDK's
 * rules (see model.ts), and the cluster's event feed.
 *
 * When the table is fetched:
 * - at once when the view opens (to show something quickly), and again once
 *   the subscription is confirmed — only that second fetch is sure to miss
 *   no event, and it runs after every (re)connection;
 * - on a revision gap (a revision still missing when the wait for a late
 *   event ran out: checked on every event and every tick);
 * - when an UP node's known lease has passed: keepalives produce no events,
 *   so the lease the table knows is a lower bound; when it runs out with no
 *   DOWN event, the console asks the server for the renewed one (at most
 *   every 5 s per cluster);
 * - every 30 s as a slow reconcile, like the SDK.
 * A node turns DOWN only when the server says so (an event or the list),
 * never because the browser's clock passed its lease.
 */
import type { MembershipEvent, Node } from '@roster/contract';
import { ClusterTable } from './model.ts';
import { describeLease } from './time.ts';
import { Feed, ago, clockTime, describeEvent, fullTime, h, setText, timeElement } from './ui.ts';
import { RECONCILE_MS, RETRY_MS, ViewReads, type AppContext, type View } from './view.ts';

const LEASE_RECHECK_MIN_MS = 5_000;
/** How long a changed row stays highlighted. */
const HIGHLIGHT_MS = 2_500;

interface Row {
  tr: HTMLTableRowElement;
  node: Node;
  status: HTMLElement;
  meta: HTMLElement;
  lease: HTMLElement;
  keepalive: HTMLElement;
  expires: HTMLElement;
  reason: HTMLElement;
}

export class ClusterView implements View {
  readonly root: HTMLElement;
  readonly heading: HTMLElement;
  private readonly table: ClusterTable;
  private readonly rows = new Map<string, Row>();
  private readonly tbody = h('tbody');
  private readonly feed: Feed;
  private readonly summary = h('p', { class: 'summary', 'aria-live': 'off' });
  private readonly problemEl = h('p', { class: 'problem', role: 'alert', hidden: true });
  private readonly emptyEl = h('p', { class: 'muted', hidden: true });
  private readonly filterText = h('input', { type: 'search', id: 'node-filter', autocomplete: 'off', spellcheck: 'false' });
  private readonly filterStatus = h(
    'select',
    { id: 'status-filter' },
    h('option', { value: 'all' }, 'All'),
    h('option', { value: 'UP' }, 'UP only'),
    h('option', { value: 'DOWN' }, 'DOWN only'),
  );
  /** Its `behind`: the last read failed (or is under way), the table may be behind. */
  private readonly sync: ViewReads;
  private lastSyncAt = 0;
  private syncedAt: number | undefined;
  private destroyed = false;

  constructor(
    private readonly app: AppContext,
    readonly clusterId: string,
  ) {
    this.table = new ClusterTable(clusterId);
    this.feed = new Feed(false, app.recentEvents(clusterId));
    this.sync = new ViewReads(app, this, () => this.fetch());
    this.heading = h('h1', { tabindex: -1 }, 'Cluster ', h('span', { class: 'id' }, clusterId));
    this.filterText.addEventListener('input', () => this.applyFilter());
    this.filterStatus.addEventListener('change', () => this.applyFilter());
    this.root = h(
      'div',
      { class: 'view view-cluster' },
      h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Clusters'), ' / ', h('span', { 'aria-current': 'page' }, clusterId)),
      this.heading,
      this.summary,
      this.problemEl,
      h(
        'div',
        { class: 'filters', role: 'search' },
        h('label', { for: 'node-filter' }, 'Filter nodes'),
        this.filterText,
        h('label', { for: 'status-filter' }, 'Status'),
        this.filterStatus,
      ),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'nodes' },
          h('caption', { class: 'visually-hidden' }, `Nodes of cluster ${clusterId}; lease ends are lower bounds, see the help below`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Node', 'Status', 'Metadata', 'Lease', 'Last keepalive', 'Lease ends in', 'Down reason'].map((label) => h('th', { scope: 'col' }, label)),
            ),
          ),
          this.tbody,
        ),
      ),
      this.emptyEl,
      h(
        'p',
        { class: 'help muted' },
        'Keepalives send no events, so “lease ends in” counts down the lease last read from the server: the lease lasts at least that long. ' +
          'When it runs out and no DOWN event came, the console reads the cluster again. A node shows DOWN only when the server says so.',
      ),
      this.feed.root,
    );
  }

  get title(): string {
    const { up, down } = this.table.counts();
    return this.table.synced ? `${this.clusterId} (${up} UP, ${down} DOWN) · Roster` : `${this.clusterId} · Roster`;
  }

  start(): void {
    this.app.live.follow([this.clusterId]);
    this.sync.run();
  }

  destroy(): void {
    this.destroyed = true;
  }

  reload(): void {
    this.sync.run();
  }

  reconnected(): void {
    // Nothing to do: the fetch after the subscription is confirmed resyncs (and resets, if the server lost its state).
  }

  subscribed(clusterId: string): void {
    if (clusterId === this.clusterId) this.sync.run();
  }

  event(event: MembershipEvent): void {
    if (event.clusterId !== this.clusterId) return;
    const outcome = this.table.applyEvent(event);
    if (outcome.applied) {
      this.renderNode(event.node.nodeId, true);
      this.renderSummary();
      this.feed.add(event);
      this.app.announcer.say(describeEvent(event, false));
    }
    if (outcome.gap) this.sync.run();
  }

  problem(text: string | undefined): void {
    this.problemEl.hidden = text === undefined;
    setText(this.problemEl, text ?? '');
  }

  tick(): void {
    const now = this.app.clock.now();
    let earliestUpExpiry = Number.POSITIVE_INFINITY;
    for (const row of this.rows.values()) {
      this.renderTimes(row, now);
      if (row.node.status === 'UP') earliestUpExpiry = Math.min(earliestUpExpiry, Date.parse(row.node.expiresAt));
    }
    // A revision still missing after the wait is a gap (model.ts): the tick is its timer.
    if (this.table.checkGap()) this.sync.run();
    const sinceSync = Date.now() - this.lastSyncAt;
    if (sinceSync > RECONCILE_MS || (now > earliestUpExpiry && sinceSync > LEASE_RECHECK_MIN_MS) || (this.sync.behind && sinceSync > RETRY_MS)) {
      this.sync.run();
    }
    this.renderSummary();
  }

  private async fetch(): Promise<void> {
    // Only a fetch that began on a confirmed subscription is sure to miss nothing.
    const subscribed = this.app.live.allSubscribed();
    this.lastSyncAt = Date.now();
    this.sync.behind = true;
    this.table.beginSnapshot();
    let list;
    try {
      list = await this.app.api.list(this.clusterId);
    } catch (err) {
      this.table.cancelSnapshot();
      throw err;
    }
    if (this.destroyed) return;
    const { changed } = this.table.applySnapshot(list);
    // The first view has nothing to highlight against.
    const highlight = this.syncedAt === undefined ? new Set<string>() : new Set(changed);
    this.syncedAt = Date.now();
    this.sync.behind = false;
    this.problem(undefined);
    this.renderAll(highlight);
    if (subscribed) this.app.synced();
  }

  private renderAll(changed: Set<string>): void {
    const nodes = this.table.nodes();
    const present = new Set(nodes.map((n) => n.nodeId));
    for (const [id, row] of this.rows) {
      if (!present.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    nodes.forEach((node, index) => {
      const row = this.renderNode(node.nodeId, changed.has(node.nodeId));
      // Move only rows that are out of place: moving a row would take the focus off a link in it.
      const at = this.tbody.children[index];
      if (row && at !== row.tr) this.tbody.insertBefore(row.tr, at ?? null);
    });
    this.renderSummary();
    this.applyFilter();
  }

  /** Creates or updates the row of `nodeId`, placing a new row in node-id order. */
  private renderNode(nodeId: string, highlight: boolean): Row | undefined {
    const node = this.table.get(nodeId);
    if (!node) return undefined;
    let row = this.rows.get(nodeId);
    if (!row) {
      row = this.createRow(node);
      this.rows.set(nodeId, row);
      const next = this.table.nodes().find((n) => n.nodeId > nodeId);
      this.tbody.insertBefore(row.tr, (next && this.rows.get(next.nodeId)?.tr) ?? null);
    }
    row.node = node;
    row.tr.dataset.status = node.status;
    row.tr.title = `incarnation ${node.incarnation}, registered ${fullTime(Date.parse(node.registeredAt))}, revision ${node.revision}`;
    row.status.className = `status status-${node.status.toLowerCase()}`;
    setText(row.status, node.status);
    setText(row.lease, `${node.leaseSeconds} s`);
    setText(row.reason, node.status === 'DOWN' ? (node.downReason ?? 'unknown') : '—');
    row.meta.replaceChildren(...metadataList(node.metadata));
    this.renderTimes(row, this.app.clock.now());
    if (highlight) {
      row.tr.classList.remove('changed');
      // Restart the animation: reading layout in between makes the browser see the class go and come back.
      void row.tr.offsetWidth;
      row.tr.classList.add('changed');
      window.setTimeout(() => row?.tr.classList.remove('changed'), HIGHLIGHT_MS);
    }
    this.applyFilterTo(row);
    return row;
  }

  private createRow(node: Node): Row {
    const cell = (label: string, cls: string) => h('td', { 'data-label': label, class: cls });
    const status = h('span');
    const meta = h('div');
    const lease = h('span');
    const keepalive = h('span');
    const expires = h('span');
    const reason = h('span');
    const tr = h(
      'tr',
      { 'data-node-id': node.nodeId },
      h('th', { scope: 'row', class: 'c-node' }, h('span', { class: 'id' }, node.nodeId)),
      appendTo(cell('Status', 'c-status'), status),
      appendTo(cell('Metadata', 'c-meta'), meta),
      appendTo(cell('Lease', 'c-lease'), lease),
      appendTo(cell('Last keepalive', 'c-keepalive'), keepalive),
      appendTo(cell('Lease ends in', 'c-expires'), expires),
      appendTo(cell('Down reason', 'c-reason'), reason),
    );
    return { tr, node, status, meta, lease, keepalive, expires, reason };
  }

  private renderTimes(row: Row, now: number): void {
    const { node } = row;
    const keepalive = Date.parse(node.lastKeepaliveAt);
    if (row.keepalive.firstChild instanceof HTMLTimeElement && row.keepalive.firstChild.dateTime === node.lastKeepaliveAt) {
      setText(row.keepalive.firstChild, ago(keepalive, now));
    } else {
      row.keepalive.replaceChildren(timeElement(node.lastKeepaliveAt, ago(keepalive, now)));
    }
    if (node.status === 'DOWN') {
      setText(row.expires, '—');
      row.expires.className = '';
      return;
    }
    const lease = describeLease(Date.parse(node.expiresAt), now);
    setText(row.expires, lease.text);
    row.expires.className = lease.overdue ? 'overdue' : '';
  }

  private renderSummary(): void {
    const { up, down } = this.table.counts();
    const synced = this.syncedAt === undefined ? 'loading…' : `read ${clockTime(this.syncedAt)}`;
    setText(this.summary, `${up} UP · ${down} DOWN · revision ${this.table.revision} · ${synced}`);
    this.emptyEl.hidden = !this.table.synced || this.rows.size > 0;
    setText(this.emptyEl, `No nodes in ${this.clusterId} (DOWN nodes stay listed for the retention period).`);
    if (document.title !== this.title) document.title = this.title;
  }

  private applyFilter(): void {
    for (const row of this.rows.values()) this.applyFilterTo(row);
  }

  private applyFilterTo(row: Row): void {
    const text = this.filterText.value.trim().toLowerCase();
    const status = this.filterStatus.value;
    const { node } = row;
    const haystack = `${node.nodeId} ${Object.entries(node.metadata)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`.toLowerCase();
    row.tr.hidden = (status !== 'all' && node.status !== status) || (text !== '' && !haystack.includes(text));
  }
}

function appendTo<T extends HTMLElement>(parent: T, child: HTMLElement): T {
  parent.append(child);
  return parent;
}

function metadataList(metadata: Record<string, string>): HTMLElement[] {
  const entries = Object.entries(metadata);
  if (entries.length === 0) return [h('span', { class: 'muted' }, '—')];
  return [h('ul', { class: 'meta' }, ...entries.map(([k, v]) => h('li', {}, h('span', { class: 'k' }, k), '=', v)))];
}
