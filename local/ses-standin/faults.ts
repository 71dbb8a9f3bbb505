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
  /** Source of randomness in [0, 1). @default Math.random */
  readonly random?: () => number;
}

const RATE_KEYS = ['throttleRate', 'rejectRate', 'rejectAfterAcceptRate', 'deliveryDelayRate'] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set([...RATE_KEYS, 'sendingPaused', 'random']);

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
  return plan;
};

/**
 * One draw per SendEmail call decides throttle vs reject (`[0, throttleRate)` throttles,
 * `[throttleRate, throttleRate + rejectRate)` rejects), so changing validation never shifts which
 * call gets which fault.
 */
export class FaultInjector {
  #plan: FaultPlan;
  /** Faults injected so far, by kind (what a soak reports). */
  readonly injected = { throttled: 0, rejected: 0, paused: 0, rejectedAfterAccept: 0, delayed: 0 };

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
