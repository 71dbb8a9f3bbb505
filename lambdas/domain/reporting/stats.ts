import { onlyDelayed } from '../feedback/feedback.ts';
import type { FeedbackEvent } from '../feedback/ses-event.ts';
import { STAT_COUNTERS, type StatCounter, type StatCounts, type UsageStore } from '../ports.ts';
import { utcDay } from '../send/rate-limit.ts';

/**
 * Per-tenant daily statistics (DESIGN §2 `GET /v1/stats`, §3 Stats): what the functions count, the
 * date range a request asks for, the rates, and the response. Pure, apart from `StatTally.flush`,
 * which writes through the UsageStore port.
 *
 * Units: `accepted`, `rejected`, `suppressed` and `failed` count messages (what Baton did with a
 * message); `sent`, `delivered`, `bounced` and `complained` count recipients (what SES did with
 * each one), which is SES's own unit, so the rates below mean what SES's reputation metrics mean
 * and stay fractions for messages with many recipients.
 */

export type { StatCounts };

/** About a quarter; also keeps one request's reads within one BatchGetItem (100 keys). */
export const MAX_STATS_DAYS = 93;
/** Without `from`, a week ending with `to`. */
export const DEFAULT_STATS_DAYS = 7;

const DAY_MS = 86_400_000;

// --- rates --------------------------------------------------------------------------------------

/**
 * The one definition of Baton's rates: events per recipient SES accepted (`bounced / sent`,
 * `complained / sent`), as a fraction rounded to 4 decimals, 0 when nothing was sent. Per day, a
 * bounce reported the day after its send is set against the later day's sends.
 */
export function rate(events: number, sent: number): number {
  return sent > 0 ? Math.round((events / sent) * 10_000) / 10_000 : 0;
}

/** The days a `GET /v1/stats` query asks for (stats-query.ts). */
export interface StatsRange {
  readonly from: string;
  readonly to: string;
  /** Every day from `from` to `to`, both included, in order. */
  readonly days: readonly string[];
}

export function addDays(day: string, n: number): string {
  return utcDay(new Date(Date.parse(`${day}T00:00:00.000Z`) + n * DAY_MS));
}

export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00.000Z`) - Date.parse(`${from}T00:00:00.000Z`)) / DAY_MS);
}

// --- the response -------------------------------------------------------------------------------

export type StatsRow = Record<StatCounter, number> & {
  readonly bounceRate: number;
  readonly complaintRate: number;
};

export interface StatsView {
  readonly from: string;
  readonly to: string;
  readonly days: ReadonlyArray<{ readonly date: string } & StatsRow>;
  readonly totals: StatsRow;
}

/** The response body: every day of the range (zeros where nothing was counted) and the totals. */
export function statsView(range: StatsRange, found: ReadonlyMap<string, StatCounts>): StatsView {
  const totals = zeros();
  const days = range.days.map((date) => {
    const counts = zeros();
    const stored = found.get(date) ?? {};
    for (const name of STAT_COUNTERS) {
      const n = stored[name] ?? 0;
      counts[name] = n;
      totals[name] += n;
    }
    return { date, ...withRates(counts) };
  });
  return { from: range.from, to: range.to, days, totals: withRates(totals) };
}

function zeros(): Record<StatCounter, number> {
  return Object.fromEntries(STAT_COUNTERS.map((name) => [name, 0])) as Record<StatCounter, number>;
}

function withRates(counts: Record<StatCounter, number>): StatsRow {
  return {
    ...counts,
    bounceRate: rate(counts.bounced, counts.sent),
    complaintRate: rate(counts.complained, counts.sent),
  };
}

// --- counting -----------------------------------------------------------------------------------

/**
 * Counts of one batch, by tenant and day, written with one atomic ADD per tenant and day when the
 * batch ends: a batch of 10 messages of one tenant costs one UpdateItem, not ten.
 */
export class StatTally {
  readonly #entries = new Map<string, { tenant: string; day: string; counts: Record<string, number> }>();

  add(tenant: string, day: string, counts: StatCounts): void {
    const key = `${tenant}#${day}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { tenant, day, counts: {} };
      this.#entries.set(key, entry);
    }
    for (const name of STAT_COUNTERS) {
      const n = counts[name];
      if (n !== undefined && n > 0) entry.counts[name] = (entry.counts[name] ?? 0) + n;
    }
  }

  /** What has been counted and not flushed yet, one entry per tenant and day that has counts. */
  entries(): Array<{ tenant: string; day: string; counts: StatCounts }> {
    return [...this.#entries.values()]
      .filter((e) => Object.keys(e.counts).length > 0)
      .map((e) => ({ tenant: e.tenant, day: e.day, counts: { ...e.counts } }));
  }

  /**
   * Writes what was counted and empties the tally (before the writes, so a second flush never
   * counts twice). Never throws: `addStats` logs its own failures, and statistics must never fail
   * a batch whose messages were handled.
   */
  async flush(usage: Pick<UsageStore, 'addStats'>): Promise<void> {
    const pending = this.entries();
    this.#entries.clear();
    await Promise.all(pending.map((e) => usage.addStats(e.tenant, e.day, e.counts)));
  }
}

/**
 * What a newly applied feedback event adds: every recipient of a Delivery, Bounce (permanent or
 * transient; not one SES lists as only delayed) or Complaint, per recipient like `sent`; a Reject
 * or Rendering Failure fails the message (it was counted sent when SES took it). Other events
 * (Send, DeliveryDelay, Open, Click, Subscription) count nothing.
 */
export function feedbackCounts(event: FeedbackEvent): StatCounts {
  switch (event.kind) {
    case 'delivery':
      return { delivered: event.recipients.length };
    case 'bounce':
      return { bounced: event.recipients.filter((r) => !onlyDelayed(event, r)).length };
    case 'complaint':
      return { complained: event.recipients.length };
    case 'reject':
    case 'rendering_failure':
      return { failed: 1 };
    default:
      return {};
  }
}

/** The UTC day an event counts on: when it happened, by SES's timestamp (else when it arrived). */
export function eventDay(at: string, now: Date): string {
  const t = Date.parse(at);
  return utcDay(Number.isNaN(t) ? now : new Date(t));
}
