import { setTimeout as delay } from 'node:timers/promises';
import type { Clock, Mailer, OutboundMail } from '../ports.ts';

/** The window over which a sender keeps its recipients per second on average. */
export const PACING_WINDOW_MS = 60_000;

/**
 * What a sender keeps before its deadline for the send itself (claim, MIME, the SES call, the status
 * write) and for finishing the batch: a record whose pacing wait would end later is handed back.
 */
export const DEADLINE_RESERVE_MS = 5_000;

// Budgets are fractional (0.35/s × 60 s is 21.000000000000004 in floating point).
const EPSILON = 1e-9;

interface Booked {
  readonly at: number;
  readonly recipients: number;
}

/**
 * Paces one sender instance's SES sends at `ratePerSecond` recipients per second: SES counts its
 * rate and quotas per recipient, not per call. Each lane's instances share the lane's part of the
 * SES rate (its event source caps how many run), so an instance that keeps to
 * `laneRate / maxConcurrency` keeps the whole lane within its share without coordination: a
 * broadcast draining at full speed cannot take the transactional lane's part.
 *
 * Two rules, both per recipient:
 * - after a send of n recipients the next waits n / rate (SES's own model: "if your send rate is
 *   one message per second and you send a message to five recipients, SES lets you; for the next
 *   five seconds it returns errors"), so a steady stream is spaced evenly and idle time is not
 *   banked beyond one send;
 * - no {@link PACING_WINDOW_MS} window holds more than rate × 60 s recipients: a message larger
 *   than one second's budget waits until the window has room for it. A message larger than the
 *   whole window's budget (a 50-recipient message at 0.15/s) goes alone: only once the window is
 *   empty, and nothing follows it for n / rate, so the average holds over that longer span.
 */
export class Pacer {
  readonly #ratePerMs: number;
  readonly #windowBudget: number;
  readonly #clock: Clock;
  readonly #sleep: (ms: number) => Promise<unknown>;
  /** Sends booked within the last window, oldest first. */
  #booked: Booked[] = [];
  /** When the last send's recipients are paid for. */
  #free = Number.NEGATIVE_INFINITY;

  constructor(ratePerSecond: number, clock: Clock, sleep: (ms: number) => Promise<unknown> = delay) {
    if (!(ratePerSecond > 0)) throw new RangeError(`a send rate must be positive, got ${ratePerSecond}`);
    this.#ratePerMs = ratePerSecond / 1000;
    this.#windowBudget = (ratePerSecond * PACING_WINDOW_MS) / 1000;
    this.#clock = clock;
    this.#sleep = sleep;
  }

  /** How long from now a send to `recipients` would have to wait (0: it may start now). Books nothing. */
  delayFor(recipients: number): number {
    const now = this.#clock().getTime();
    return wholeMs(this.#earliest(recipients, now)) - now;
  }

  /** Resolves when a send to `recipients` may start; its slot is booked before the wait. */
  async acquire(recipients = 1): Promise<void> {
    const now = this.#clock().getTime();
    const earliest = this.#earliest(recipients, now);
    // Booked (and slept to) in whole milliseconds, rounded up: clocks and timers keep no fractions,
    // and early is too early. The debt runs from the exact time, so rounding never accumulates.
    const at = wholeMs(earliest);
    this.#booked.push({ at, recipients });
    this.#free = earliest + recipients / this.#ratePerMs;
    if (at > now) await this.#sleep(at - now);
  }

  #earliest(recipients: number, now: number): number {
    const n = Math.max(1, recipients);
    // Bookings that no window from now on can contain are forgotten.
    this.#booked = this.#booked.filter((b) => b.at > now - PACING_WINDOW_MS);
    let at = Math.max(now, this.#free);
    if (n > this.#windowBudget + EPSILON) {
      const last = this.#booked.at(-1);
      return last === undefined ? at : Math.max(at, last.at + PACING_WINDOW_MS);
    }
    // The earliest time at which the window (at - 60 s, at] has room for n more.
    for (const b of this.#booked) {
      const inWindow = this.#booked
        .filter((o) => o.at > at - PACING_WINDOW_MS && o.at <= at)
        .reduce((sum, o) => sum + o.recipients, 0);
      if (inWindow + n <= this.#windowBudget + EPSILON) break;
      at = Math.max(at, b.at + PACING_WINDOW_MS);
    }
    return at;
  }
}

/**
 * The time as Node's monotonic clock counts it from the process's start: wall-clock time that never
 * steps. A pacer on `new Date()` would take a forward step of the system clock (an NTP correction)
 * for time passed and send a whole window's budget again at once.
 */
export const steadyClock: Clock = () => new Date(performance.timeOrigin + performance.now());

/** Rounded up to a whole millisecond, ignoring floating-point dust (epoch milliseconds keep only about 0.2 µs). */
function wholeMs(ms: number): number {
  return Math.ceil(ms - 1e-3);
}

/** A mailer that waits its turn, by the mail's recipient count, before each send. */
export function pacedMailer(mailer: Mailer, pacer: Pacer): Mailer {
  return {
    async send(mail: OutboundMail): Promise<string> {
      await pacer.acquire(recipientCount(mail));
      return mailer.send(mail);
    },
  };
}

/** SES's unit: every envelope recipient. */
export function recipientCount(mail: {
  readonly to: readonly unknown[];
  readonly cc: readonly unknown[];
  readonly bcc: readonly unknown[];
}): number {
  return mail.to.length + mail.cc.length + mail.bcc.length;
}
