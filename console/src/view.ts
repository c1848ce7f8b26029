/** What a view gets from the app, and what the app asks of a view. */
import type { MembershipEvent } from '@roster/contract';
import { isTransient, type Api } from './api.ts';
import type { Live } from './live.ts';
import type { ServerClock } from './time.ts';
import type { Announcer } from './ui.ts';

/** Every view reads its list again this often as a slow reconcile, like the SDK: it finds what no event told of. */
export const RECONCILE_MS = 30_000;
/** A failed read is tried again this soon (the server may be starting up). */
export const RETRY_MS = 2_000;

export interface AppContext {
  readonly api: Api;
  readonly live: Live;
  readonly clock: ServerClock;
  readonly announcer: Announcer;
  /** A fetch that began with every followed cluster subscribed has succeeded: the view is resynced. */
  synced(): void;
  /** The events of this page's lifetime (the newest 200), oldest first; of one cluster if named. */
  recentEvents(clusterId?: string): readonly MembershipEvent[];
  /** A request failed: a 401 asks for a token (then `retry` runs), anything else is shown in the view. */
  failed(error: unknown, view: View): void;
}

export interface View {
  readonly root: HTMLElement;
  /** The view's `<h1>`: focused when the view opens, so screen readers announce it. */
  readonly heading: HTMLElement;
  readonly title: string;
  start(): void;
  destroy(): void;
  /** Once a second while the page is visible: countdowns, ages, slow reconciles. */
  tick(): void;
  subscribed(clusterId: string): void;
  /** The WebSocket opened again after a drop (the server may have restarted). */
  reconnected(): void;
  event(event: MembershipEvent): void;
  /** Shows (or, with undefined, clears) a problem with the view's data. */
  problem(text: string | undefined): void;
  /** Fetch again now (after a token was entered). */
  reload(): void;
}

/** Runs `task` one at a time: a request while one runs makes it run once more afterwards. */
export class SingleFlight {
  private running = false;
  private again = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  run(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.task()
      .catch(this.onError)
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.run();
        }
      });
  }
}

/**
 * A view's reads of the server, one at a time. Shared by both views so they treat a failed read alike:
 * `behind` is set while a read is under way and stays set after a failure that may pass (the view's
 * tick retries soon); a refusal clears it (the view waits for its slow reconcile, or a token), and
 * every failure is shown by the app. The view clears `behind` once a read has succeeded.
 */
export class ViewReads {
  behind = true;
  private readonly flight: SingleFlight;

  constructor(app: AppContext, view: View, read: () => Promise<void>) {
    this.flight = new SingleFlight(read, (err) => {
      if (!isTransient(err)) this.behind = false;
      app.failed(err, view);
    });
  }

  run(): void {
    this.flight.run();
  }
}
