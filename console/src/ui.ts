/**
 * Small DOM helpers and the parts every view shares: the connection banner,
 * the throttled screen-reader announcer and the event feed.
 *
 * Text from the server (ids, metadata, messages) only ever becomes text
 * nodes or attribute values, never markup.
 */
import type { MembershipEvent } from '@roster/contract';
import { formatDuration } from './time.ts';

type Child = Node | string | number | false | null | undefined;
type Attrs = Record<string, string | number | boolean | undefined>;

/** `h('a', { href: '#/' }, 'Clusters')`. `true` sets a boolean attribute; `false`/`undefined` leave it out. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'number' ? String(child) : child);
  }
}

/** Sets text only when it changed: the per-second tick touches many cells, most of which did not change. */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export const clusterHref = (clusterId: string): string => `#/clusters/${encodeURIComponent(clusterId)}`;

const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// Intl throws on an invalid time: a malformed timestamp from the wire reads as a dash instead.
export const clockTime = (ms: number): string => (Number.isFinite(ms) ? clockFormat.format(ms) : '—');
export const fullTime = (ms: number): string => (Number.isFinite(ms) ? dateTimeFormat.format(ms) : '—');

/** A `<time>` for a server timestamp, with its full local time as a tooltip. */
export function timeElement(iso: string, text: string): HTMLTimeElement {
  const ms = Date.parse(iso);
  return h('time', { datetime: iso, title: Number.isFinite(ms) ? fullTime(ms) : undefined }, text);
}

export const ago = (ms: number, now: number): string => (Number.isFinite(ms) ? `${formatDuration(now - ms)} ago` : '—');

/**
 * Announces to screen readers, politely and at most every few seconds: a
 * burst of events becomes one sentence instead of a queue of dozens.
 */
export class Announcer {
  private queued: string[] = [];
  private timer: number | undefined;

  constructor(
    private readonly region: HTMLElement,
    private readonly everyMs = 3000,
  ) {}

  say(text: string): void {
    this.queued.push(text);
    this.timer ??= window.setTimeout(() => this.flush(), this.everyMs);
  }

  private flush(): void {
    this.timer = undefined;
    const items = this.queued.splice(0);
    if (items.length === 0) return;
    const shown = items.slice(0, 3).join('; ');
    this.region.textContent = items.length > 3 ? `${shown}; and ${items.length - 3} more changes` : shown;
  }
}

export type BannerState = 'hidden' | 'lost' | 'resyncing' | 'resynced';

/** The connection banner; `data-state` lets tests and styles tell its states apart. */
export class Banner {
  private hideTimer: number | undefined;

  constructor(private readonly el: HTMLElement) {}

  get state(): BannerState {
    return (this.el.dataset.state as BannerState | undefined) ?? 'hidden';
  }

  show(state: Exclude<BannerState, 'hidden'>, text: string): void {
    clearTimeout(this.hideTimer);
    this.el.dataset.state = state;
    this.el.hidden = false;
    setText(this.el, text);
    if (state === 'resynced') this.hideTimer = window.setTimeout(() => this.hide(), 6000);
  }

  hide(): void {
    clearTimeout(this.hideTimer);
    this.el.dataset.state = 'hidden';
    this.el.hidden = true;
    this.el.textContent = '';
  }
}

const EVENT_WORD: Record<MembershipEvent['type'], string> = {
  NODE_REGISTERED: 'registered',
  NODE_UPDATED: 'updated',
  NODE_DOWN: 'DOWN',
};

/** How an event reads in the feed and to a screen reader. */
export function describeEvent(event: MembershipEvent, withCluster: boolean): string {
  const who = withCluster ? `${event.clusterId}/${event.node.nodeId}` : event.node.nodeId;
  const reason = event.type === 'NODE_DOWN' ? ` (${event.reason ?? event.node.downReason ?? 'no reason given'})` : '';
  return `${who} ${EVENT_WORD[event.type]}${reason}`;
}

/** The live event feed: newest first, bounded. */
export class Feed {
  readonly root: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly empty: HTMLParagraphElement;
  private readonly keys = new Set<string>();

  constructor(
    private readonly withCluster: boolean,
    earlier: readonly MembershipEvent[] = [],
    private readonly max = 100,
  ) {
    this.list = h('ol', { class: 'feed-list', reversed: true });
    this.empty = h('p', { class: 'muted' }, 'No events since this page opened. Membership changes appear here as they happen.');
    this.root = h(
      'section',
      { class: 'feed', 'aria-labelledby': 'feed-title' },
      h('h2', { id: 'feed-title' }, 'Live events'),
      this.empty,
      this.list,
    );
    for (const event of earlier.slice(-max)) this.add(event);
  }

  add(event: MembershipEvent): void {
    // At-least-once delivery: the same event may come twice (and once more from the page's history).
    const key = `${event.clusterId}/${event.node.nodeId}@${event.revision}`;
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.empty.hidden = true;
    const kind = event.type === 'NODE_DOWN' ? 'down' : event.type === 'NODE_UPDATED' ? 'updated' : 'up';
    const at = Date.parse(event.at);
    const target = this.withCluster
      ? h('a', { href: clusterHref(event.clusterId) }, event.clusterId)
      : null;
    const item = h(
      'li',
      { 'data-event': event.type, 'data-node-id': event.node.nodeId, 'data-key': key },
      timeElement(event.at, Number.isFinite(at) ? clockTime(at) : event.at),
      ' ',
      h('span', { class: `tag tag-${kind}` }, EVENT_WORD[event.type]),
      ' ',
      target,
      target ? ' / ' : null,
      h('strong', {}, event.node.nodeId),
      event.type === 'NODE_DOWN' ? ` ${event.reason ?? event.node.downReason ?? ''}` : '',
      h('span', { class: 'muted' }, ` · revision ${event.revision}`),
    );
    this.list.prepend(item);
    while (this.list.childElementCount > this.max) {
      const last = this.list.lastElementChild;
      if (last instanceof HTMLElement && last.dataset.key) this.keys.delete(last.dataset.key);
      last?.remove();
    }
  }
}
