/**
 * When a failed webhook delivery is tried again, and what an answer means. Pure: the clock and the
 * randomness are passed in, so the wiring decides (SQS delay or visibility timeout) and tests are exact.
 * The attempt number is Baton's own, carried in the job: SQS's receive count also counts crashes and
 * redrives, and would skip steps of the schedule.
 */

/** SQS cannot hide a message longer than 12 h (ChangeMessageVisibility's limit), so no wait is longer. */
export const maxDelaySeconds = 12 * 60 * 60;

/** How long after the first attempt an event is still tried: about three days, then given up. */
export const retryWindowSeconds = 3 * 24 * 60 * 60;

// The schedule, as waits after attempts 1 to 6; 12 h steps after that. Early retries are close
// because most failures are a deploy or a blip; later ones are sparse so a dead endpoint costs little.
const waits = [5, 5 * 60, 30 * 60, 2 * 60 * 60, 5 * 60 * 60, 10 * 60 * 60] as const;

// Spread retries so endpoints that failed together (an outage) are not hit again all at the same second.
const jitter = 0.1;

// A last attempt this close after the previous one adds load and almost no chance; give up instead.
const minFinalWaitSeconds = 60 * 60;

export interface NextAttemptInput {
  /** The attempt that just failed, Baton's own count from 1. */
  readonly attempt: number;
  readonly firstAttemptAt: Date;
  readonly now: Date;
  /** The receiver's `Retry-After` (429 or 503), already in seconds; never retried sooner than that. */
  readonly retryAfterSeconds?: number;
  /** In [0, 1), like Math.random. */
  readonly random: () => number;
}

export type NextAttempt = { readonly delaySeconds: number } | { readonly giveUp: true };

/** The wait before the next attempt, or that the event has been tried long enough. */
export function nextAttempt(input: NextAttemptInput): NextAttempt {
  const { attempt, firstAttemptAt, now, retryAfterSeconds = 0, random } = input;
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new RangeError(`the attempt number must be an integer from 1, not ${attempt}`);
  }
  const draw = random();
  if (!(draw >= 0 && draw < 1)) throw new RangeError(`random() must return a number in [0, 1), not ${draw}`);

  const base = waits[attempt - 1] ?? maxDelaySeconds;
  const jittered = Math.max(1, Math.round(base * (1 + (draw * 2 - 1) * jitter)));
  const wanted = Math.min(Math.max(jittered, retryAfterSeconds), maxDelaySeconds);

  const elapsed = (now.getTime() - firstAttemptAt.getTime()) / 1000;
  const remaining = Math.floor(retryWindowSeconds - elapsed);
  if (wanted <= remaining) return { delaySeconds: wanted };
  // The receiver asked us not to come back before the window closes: respect it and stop.
  if (retryAfterSeconds > remaining || remaining < minFinalWaitSeconds) return { giveUp: true };
  // Rather than stop a step short, make one last attempt at the three-day mark.
  return { delaySeconds: remaining };
}

/**
 * What an attempt's result means for the event. `retry-after` is a retry that honours the answer's
 * `Retry-After`, when it has one.
 */
export type DeliveryOutcome = 'success' | 'disable' | 'retry-after' | 'retry';

/**
 * Redirects are failures: following one would let a registered public URL point the delivery at an
 * address the SSRF check never saw. 410 Gone is the receiver saying the endpoint is retired.
 */
export function outcomeOf(status: number | 'timeout' | 'network'): DeliveryOutcome {
  if (typeof status !== 'number') return 'retry';
  if (status >= 200 && status < 300) return 'success';
  if (status === 410) return 'disable';
  if (status === 429 || status === 503) return 'retry-after';
  return 'retry';
}

// RFC 9110 allows delay-seconds or an HTTP-date; only the IMF-fixdate form of the date is read, because
// Date.parse accepts almost anything ("1.5" is a date to it) and a misread header would delay for hours.
const imfFixdate = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** A `Retry-After` header in seconds from `now`, or undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null | undefined, now: Date): number | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  if (!imfFixdate.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}
