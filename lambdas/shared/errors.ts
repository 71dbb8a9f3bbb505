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
 * SES may or may not have taken the message: the request went out and no answer proves either way
 * (a 5xx, a reset connection, a timeout). Retrying at once could send it twice; see `sendJob`.
 */
export class UncertainSendError extends TransientError {
  override readonly name: string = 'UncertainSendError';
  /** SES's request id, when an answer came back at all (for SES support). */
  readonly requestId: string | undefined;

  constructor(message: string, options: { readonly cause?: unknown; readonly requestId?: string } = {}) {
    super(message, { cause: options.cause });
    this.requestId = options.requestId;
  }
}

/**
 * An attempt whose outcome SES left unknown is waiting for SES's evidence: try again after
 * `retryAfterMs`, when the confirmation window has passed (not sooner, and not with the usual
 * backoff, which would spend receives for nothing).
 */
export class ConfirmationPendingError extends TransientError {
  override readonly name: string = 'ConfirmationPendingError';
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number, options: { readonly cause?: unknown } = {}) {
    super(message, options);
    this.retryAfterMs = retryAfterMs;
  }
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
