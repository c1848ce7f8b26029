/**
 * Time on the server's clock, and how the console writes durations. No DOM
 * here: the module is unit-tested under Node.
 *
 * Leases and keepalive times are the server's timestamps; counting them down
 * with the browser's clock would be off by however wrong that clock is. The
 * console estimates the offset from two sources:
 * - the `Date` header of every API response (whole seconds, so the server's
 *   time was within [Date, Date + 1 s) when it answered), and
 * - each event's `at`, stamped before delivery, so at receipt the server's
 *   clock reads at least `at`: a lower bound.
 */

export class ServerClock {
  /** serverTime ≈ Date.now() + offset */
  private fromHeaders: number | undefined;
  private lowerBound = Number.NEGATIVE_INFINITY;

  constructor(private readonly local: () => number = Date.now) {}

  /** The offset in ms (positive: the server is ahead). */
  get offset(): number {
    return Math.max(this.fromHeaders ?? 0, this.lowerBound);
  }

  now(): number {
    return this.local() + this.offset;
  }

  /** A response's `Date` header, with the local times the request was sent and answered. */
  sampleDate(header: string | null, sentAt: number, receivedAt: number): void {
    const date = header === null ? Number.NaN : Date.parse(header);
    if (!Number.isFinite(date)) return;
    const estimate = date + 500 - (sentAt + receivedAt) / 2;
    // Smooth the ±0.5 s quantisation of the header over several responses.
    this.fromHeaders = this.fromHeaders === undefined ? estimate : this.fromHeaders * 0.75 + estimate * 0.25;
  }

  /** An event stamped `at` (server time) arrived now. Only the latest counts, so a local clock jump heals. */
  sampleEvent(at: string): void {
    const stamped = Date.parse(at);
    if (Number.isFinite(stamped)) this.lowerBound = stamped - this.local();
  }
}

/** `4 s`, `3 min 05 s`, `2 h 10 min`, `3 d 4 h`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The countdown to a lease's end as the table shows it; see docs/operating/console.md for why it is a lower bound. */
export function describeLease(expiresAt: number, serverNow: number): { text: string; overdue: boolean } {
  const left = expiresAt - serverNow;
  if (!Number.isFinite(left)) return { text: '—', overdue: false };
  if (left > 0) return { text: `≥ ${formatDuration(left)}`, overdue: false };
  return { text: `renewal unconfirmed (${formatDuration(-left)})`, overdue: true };
}
