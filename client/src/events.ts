/**
 * Delivery of client events to listeners (`on`) and to async iterators
 * (`events()`), in the order they were emitted.
 */
import type { ClientEvent, ClientEventType } from './types.ts';

type Listener = (event: never) => void;

/**
 * An async iterator over events. It buffers what its consumer has not read
 * yet; it ends after the `closed` event or when the consumer breaks out of
 * its loop.
 */
class EventQueue implements AsyncIterableIterator<ClientEvent> {
  private items: ClientEvent[] = [];
  private head = 0;
  private waiter: ((result: IteratorResult<ClientEvent>) => void) | undefined;
  private done = false;

  constructor(private readonly detach: (queue: EventQueue) => void) {}

  push(event: ClientEvent): void {
    if (this.done) return;
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = undefined;
      resolve({ value: event, done: false });
    } else {
      this.items.push(event);
    }
  }

  end(): void {
    this.done = true;
    if (this.waiter) {
      const resolve = this.waiter;
      this.waiter = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<ClientEvent>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head++] as ClientEvent;
      // Drop consumed items now and then instead of shifting the array on every read.
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  return(): Promise<IteratorResult<ClientEvent>> {
    this.detach(this);
    this.items = [];
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ClientEvent> {
    return this;
  }
}

export class EventHub {
  private readonly listeners = new Map<ClientEventType, Set<Listener>>();
  private readonly queues = new Set<EventQueue>();
  private ended = false;

  /** Listeners are typed by the caller (RosterClient's `on` overloads); here any listener fits. */
  on(type: ClientEventType, listener: Listener): void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  off(type: ClientEventType, listener: Listener): void {
    this.listeners.get(type)?.delete(listener);
  }

  /** Whether anyone would receive an event of this type (lets the client skip building a large `change` payload). */
  wants(type: ClientEventType): boolean {
    return this.queues.size > 0 || (this.listeners.get(type)?.size ?? 0) > 0;
  }

  emit(event: ClientEvent): void {
    for (const queue of this.queues) queue.push(event);
    const set = this.listeners.get(event.type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (event: ClientEvent) => void)(event);
      } catch (err) {
        // A listener's bug surfaces like any uncaught exception, but only after
        // the client finished its own bookkeeping for this event.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }

  iterate(): AsyncIterableIterator<ClientEvent> {
    const queue = new EventQueue((q) => this.queues.delete(q));
    if (this.ended) queue.end();
    else this.queues.add(queue);
    return queue;
  }

  /** After the terminal event: every iterator finishes once drained. */
  end(): void {
    this.ended = true;
    for (const queue of this.queues) queue.end();
    this.queues.clear();
  }
}
