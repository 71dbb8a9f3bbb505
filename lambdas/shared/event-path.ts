/**
 * Timings of the SES event path (SES → SNS → feedback queue → feedback function) that the stack,
 * local mode and the run-time code must agree on. Like `names.ts`, free of imports: the stack
 * derives queue settings and environment from these, the functions read the results.
 */

/**
 * Seconds SES takes, deployed, to publish an event for a message it took and SNS to put it on the
 * feedback queue. SES documents no bound; Send events are published within seconds of the
 * SendEmail answer, so a minute is the allowance for a slow one.
 */
export const SES_EVENT_ALLOWANCE_SECONDS = 60;

/** Seconds a redelivered event takes to be applied once it is received again (one short invocation). */
const REDELIVERED_TRY_SECONDS = 5;

export interface EventPathSettings {
  /** Seconds from SES taking the message to its Send event on the feedback queue. */
  readonly publishSeconds: number;
  /** The feedback event source's maximum batching window, in seconds. */
  readonly batchingWindowSeconds: number;
  /**
   * The feedback queue's visibility timeout, in seconds: an event whose first try failed (a
   * throttled or conflicting write) is received again after it.
   */
  readonly visibilitySeconds: number;
}

/**
 * How long the sender waits for SES's evidence (a Send, Delivery, Bounce, Reject or Rendering
 * Failure event carrying Baton's id) after a SendEmail whose outcome it did not learn, before it
 * concludes SES kept nothing and sends again: the event path's worst normal latency, which is the
 * event published, waiting out the batching window, one failed try and its redelivery.
 */
export function confirmationWindowSeconds(path: EventPathSettings): number {
  return Math.ceil(
    path.publishSeconds + path.batchingWindowSeconds + path.visibilitySeconds + REDELIVERED_TRY_SECONDS,
  );
}

/**
 * How long the feedback function keeps retrying an event for a message it cannot find before it
 * calls the event orphaned (dead-lettered as such, not as a transient failure). The sender writes
 * SES's message id right after SendEmail answers; identity notifications carry only that id.
 */
export const FEEDBACK_RACE_WINDOW_SECONDS = 15 * 60;

/**
 * The feedback queue's maxReceiveCount for a visibility timeout: enough receives that the last one
 * comes after the race window (receive n is at least (n - 1) × visibility after the first, which is
 * after the event), so an event for an unknown message is classified orphaned on its last receive.
 */
export function feedbackReceivesFor(
  visibilitySeconds: number,
  raceWindowSeconds = FEEDBACK_RACE_WINDOW_SECONDS,
): number {
  return Math.floor(raceWindowSeconds / visibilitySeconds) + 2;
}
