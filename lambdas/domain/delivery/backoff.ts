/**
 * Seconds until the next attempt: exponential in the attempt number, capped, with full jitter so
 * that a batch throttled together does not come back together (AWS Architecture Blog,
 * "Exponential Backoff And Jitter").
 */
export function backoffSeconds(
  attempt: number,
  random: () => number = Math.random,
  baseSeconds = 2,
  capSeconds = 900,
): number {
  const ceiling = Math.min(capSeconds, baseSeconds * 2 ** Math.max(0, attempt - 1));
  return Math.max(1, Math.ceil(random() * ceiling));
}

/** How long a batch waits when SES has paused the account's sending. */
export const PAUSED_DELAY_SECONDS = 900;
