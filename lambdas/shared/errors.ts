/**
 * Error classes shared by the domain and the adapters. Adapters are the only code that knows AWS
 * exception names; they translate them into these so the domain can decide what a failure means
 * (retry, give up, stop) without importing an SDK. Every class keeps the original in `cause`.
 */

/** Worth retrying later: throttling, a 5xx, a network fault, a claim held by a live attempt. */
export class TransientError extends Error {
  override readonly name: string = 'TransientError';
}

/** Retrying cannot help (SES refused the message, a record is malformed). `reason` is for humans. */
export class PermanentError extends Error {
  override readonly name: string = 'PermanentError';
}

/**
 * The SES account cannot send at all (sending paused, account suspended). The whole batch goes
 * back to the queue with a long delay and an alarm fires; nothing is marked failed.
 */
export class SendingPausedError extends Error {
  override readonly name = 'SendingPausedError';
}

/**
 * A sender handed a record back untaken: its pace would reach it only after the invocation's deadline.
 * Nothing was attempted; the record returns once the sender's pace allows.
 */
export class OutOfTimeError extends TransientError {
  override readonly name = 'OutOfTimeError';
}

/**
 * Another attempt holds the message's claim until `until` (epoch ms): a live one will finish it, a dead
 * one's claim runs out then. Retrying sooner only burns the record's receives.
 */
export class ClaimHeldError extends TransientError {
  override readonly name = 'ClaimHeldError';
  readonly until: number;

  constructor(message: string, until: number) {
    super(message);
    this.until = until;
  }
}

/** A required setting is missing or invalid; thrown at cold start so the function fails loudly. */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

/** A conditional write lost a race (optimistic concurrency); the caller re-reads and retries. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** A pagination cursor that this store did not hand out (tampered, truncated, from elsewhere). */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}
