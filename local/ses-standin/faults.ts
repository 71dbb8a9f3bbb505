import { SesApiError } from './ses-api-error.ts';

/**
 * Faults the SES stand-in injects, for soak and resilience tests. Rates are fractions in [0, 1].
 * With an injected `random`, the same plan and the same sequence of calls give the same faults.
 */
export interface FaultPlan {
  /** Fraction of SendEmail calls answered 429 TooManyRequestsException (before any validation, like SES's rate limiter). @default 0 */
  readonly throttleRate?: number;
  /** Fraction of otherwise valid SendEmail calls answered 400 MessageRejected. @default 0 */
  readonly rejectRate?: number;
  /** Answer every SendEmail with SendingPausedException (and GetAccount with SendingEnabled false). @default false */
  readonly sendingPaused?: boolean;
  /** Fraction of accepted messages that SES later rejects (virus scan): Send then Reject event, nothing delivered. @default 0 */
  readonly rejectAfterAcceptRate?: number;
  /** Fraction of delivered recipients that get a DeliveryDelay event before their Delivery. @default 0 */
  readonly deliveryDelayRate?: number;
  /**
   * Fraction of otherwise valid SendEmail calls that SES keeps (delivers, publishes events for)
   * while the caller gets an InternalFailure 500 or a reset connection (half each): the caller
   * cannot tell whether the message went out. @default 0
   */
  readonly acceptThenFailRate?: number;
  /**
   * Fraction of otherwise valid SendEmail calls answered the same way (500 or a reset) with
   * nothing kept: no event will ever come, so the caller must send again. @default 0
   */
  readonly failWithoutAcceptRate?: number;
  /** Pause before each event is published (ms), over the stand-in's own setting. @default the stand-in's (50) */
  readonly eventDelayMs?: number;
  /** Source of randomness in [0, 1). @default Math.random */
  readonly random?: () => number;
}

const RATE_KEYS = [
  'throttleRate',
  'rejectRate',
  'rejectAfterAcceptRate',
  'deliveryDelayRate',
  'acceptThenFailRate',
  'failWithoutAcceptRate',
] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set([...RATE_KEYS, 'sendingPaused', 'random', 'eventDelayMs']);

/** Rejects unknown keys and out-of-range rates: a typo in a soak test must not silently mean "no faults". */
export const validateFaultPlan = (plan: FaultPlan): FaultPlan => {
  for (const key of Object.keys(plan)) {
    if (!KNOWN_KEYS.has(key)) throw new TypeError(`FaultPlan: unknown option '${key}'`);
  }
  for (const key of RATE_KEYS) {
    const rate = plan[key];
    if (rate !== undefined && !(rate >= 0 && rate <= 1)) {
      throw new RangeError(`FaultPlan: ${key} must be between 0 and 1, got ${String(rate)}`);
    }
  }
  const delay = plan.eventDelayMs;
  if (delay !== undefined && !(Number.isFinite(delay) && delay >= 0 && delay <= 600_000)) {
    throw new RangeError(`FaultPlan: eventDelayMs must be between 0 and 600000, got ${String(delay)}`);
  }
  return plan;
};

/** How an ambiguous answer reaches the caller. */
export type AmbiguousAnswer = 'internal-failure' | 'connection-reset';

/** An ambiguous SendEmail answer the stand-in gave: whether it kept the message, and for which Baton id. */
export interface AmbiguousOutcome {
  readonly batonMessageId: string | undefined;
  readonly kept: boolean;
  readonly answer: AmbiguousAnswer;
}

/**
 * Thrown by the stand-in's SendEmail after deciding (and, for `kept`, after keeping the message):
 * the server answers InternalFailure or drops the connection instead of the 200.
 */
export class AmbiguousAnswerError extends Error {
  override readonly name = 'AmbiguousAnswerError';
  readonly answer: AmbiguousAnswer;

  constructor(answer: AmbiguousAnswer) {
    super('The SES stand-in lost its answer (injected fault).');
    this.answer = answer;
  }
}

/**
 * One draw per SendEmail call decides throttle vs reject (`[0, throttleRate)` throttles,
 * `[throttleRate, throttleRate + rejectRate)` rejects), so changing validation never shifts which
 * call gets which fault.
 */
export class FaultInjector {
  #plan: FaultPlan;
  /** Faults injected so far, by kind (what a soak reports). */
  readonly injected = {
    throttled: 0,
    rejected: 0,
    paused: 0,
    rejectedAfterAccept: 0,
    delayed: 0,
    acceptedThenFailed: 0,
    failedWithoutAccept: 0,
  };
  /** Every ambiguous answer given, in order (what a soak checks message by message). */
  readonly ambiguous: AmbiguousOutcome[] = [];

  constructor(plan: FaultPlan = {}) {
    this.#plan = validateFaultPlan(plan);
  }

  get plan(): FaultPlan {
    return this.#plan;
  }

  set plan(plan: FaultPlan) {
    this.#plan = validateFaultPlan(plan);
  }

  get sendingPaused(): boolean {
    return this.#plan.sendingPaused === true;
  }

  /** Called once per SendEmail before validation; returns the draw for {@link afterValidation}. */
  beforeValidation(): number {
    const { throttleRate = 0, rejectRate = 0 } = this.#plan;
    const draw = throttleRate > 0 || rejectRate > 0 ? this.#random() : 1;
    if (draw < throttleRate) {
      this.injected.throttled++;
      throw new SesApiError('TooManyRequestsException', 'Maximum sending rate exceeded.');
    }
    return draw;
  }

  afterValidation(draw: number): void {
    if (this.sendingPaused) {
      this.injected.paused++;
      throw new SesApiError('SendingPausedException', 'Email sending is disabled for this account.');
    }
    const { throttleRate = 0, rejectRate = 0 } = this.#plan;
    if (draw < throttleRate + rejectRate) {
      this.injected.rejected++;
      throw new SesApiError('MessageRejected', 'Message rejected by the SES stand-in (injected fault).');
    }
  }

  /**
   * Decides, for a valid SendEmail, whether its answer will be lost: undefined (answer normally),
   * or how, and whether SES keeps the message anyway. Draws only when a rate is set.
   */
  loseAnswer(batonMessageId: string | undefined): AmbiguousOutcome | undefined {
    const { acceptThenFailRate = 0, failWithoutAcceptRate = 0 } = this.#plan;
    if (acceptThenFailRate <= 0 && failWithoutAcceptRate <= 0) return undefined;
    const draw = this.#random();
    if (draw >= acceptThenFailRate + failWithoutAcceptRate) return undefined;
    const kept = draw < acceptThenFailRate;
    if (kept) this.injected.acceptedThenFailed++;
    else this.injected.failedWithoutAccept++;
    const answer: AmbiguousAnswer = this.#random() < 0.5 ? 'internal-failure' : 'connection-reset';
    const outcome = { batonMessageId, kept, answer };
    this.ambiguous.push(outcome);
    return outcome;
  }

  /** Whether an accepted message is rejected after the fact (draws only when the rate is set). */
  rejectAfterAccept(): boolean {
    const rate = this.#plan.rejectAfterAcceptRate ?? 0;
    const hit = rate > 0 && this.#random() < rate;
    if (hit) this.injected.rejectedAfterAccept++;
    return hit;
  }

  delayDelivery(): boolean {
    const rate = this.#plan.deliveryDelayRate ?? 0;
    const hit = rate > 0 && this.#random() < rate;
    if (hit) this.injected.delayed++;
    return hit;
  }

  #random(): number {
    return (this.#plan.random ?? Math.random)();
  }
}
