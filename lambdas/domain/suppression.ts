/**
 * The suppression list: addresses Baton must not mail. State only moves up by severity
 * (complaint > hard bounce > soft bounce): feedback timestamps cannot order events, so the
 * strongest evidence wins whatever arrives first, and the same event twice changes nothing.
 */

import { fail } from './problem.ts';

export const SUPPRESSION_REASONS = [
  'hard_bounce',
  'soft_bounce',
  'complaint',
  'unsubscribe',
  'manual',
] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

export const SEVERITY: Readonly<Record<SuppressionReason, number>> = {
  soft_bounce: 1,
  manual: 2,
  unsubscribe: 2,
  hard_bounce: 3,
  complaint: 4,
};

export interface Suppression {
  /** Normalised (see `normaliseAddress`): the table key. */
  readonly address: string;
  readonly reason: SuppressionReason;
  /** What happened, in words (diagnostic code, feedback type, operator note). */
  readonly detail: string | null;
  /** Where it came from: the Baton message id of the evidence, or `api`. */
  readonly source: string | null;
  readonly createdAt: string;
  /** ISO time after which it no longer applies (soft bounces only); null = permanent. */
  readonly expiresAt: string | null;
  readonly severity: number;
  /** The raw evidence kept for support: bounce type/subtype, feedback type, SES message id. */
  readonly evidence?: Readonly<Record<string, string>>;
}

export function isActive(s: Suppression, now: Date): boolean {
  return s.expiresAt === null || Date.parse(s.expiresAt) > now.getTime();
}

/**
 * True when `existing` stands against `candidate`: it is still in force and stronger. An
 * operator's manual entry never weakens stronger evidence (a complaint stays a complaint).
 */
export function outranks(
  existing: Suppression | undefined,
  candidate: Suppression,
  now: Date,
): existing is Suppression {
  return existing !== undefined && isActive(existing, now) && existing.severity > candidate.severity;
}

/**
 * The suppression an operator asks for (`PUT /v1/suppressions/{address}`, body
 * `{"reason": "manual" | "unsubscribe", "detail"?: string}`); a bad body is a 422 problem.
 */
export function manualSuppression(address: string, body: unknown, now: Date): Suppression {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    fail('invalid_request', 'The body must be a JSON object like {"reason": "manual", "detail": "..."}.');
  }
  const b = body as Record<string, unknown>;
  const errors: { path: string; message: string }[] = [];
  const reason = b.reason ?? 'manual';
  if (reason !== 'manual' && reason !== 'unsubscribe') {
    errors.push({ path: 'reason', message: 'must be "manual" or "unsubscribe"' });
  }
  if (b.detail !== undefined && (typeof b.detail !== 'string' || b.detail.length > 1000)) {
    errors.push({ path: 'detail', message: 'must be a string of at most 1000 characters' });
  }
  for (const k of Object.keys(b)) {
    if (k !== 'reason' && k !== 'detail') errors.push({ path: k, message: 'unknown field' });
  }
  if (errors.length > 0) fail('invalid_request', 'The suppression is not valid.', errors);
  return operatorSuppression(
    address,
    reason as OperatorReason,
    typeof b.detail === 'string' ? b.detail : null,
    now,
  );
}

type OperatorReason = 'manual' | 'unsubscribe';

/** A permanent entry made through the API (an operator's, or erasure's tombstone). */
export function operatorSuppression(
  address: string,
  reason: OperatorReason,
  detail: string | null,
  now: Date,
): Suppression {
  return {
    address,
    reason,
    detail,
    source: 'api',
    createdAt: now.toISOString(),
    expiresAt: null,
    severity: SEVERITY[reason],
  };
}

const REASON_WORDS: Readonly<Record<SuppressionReason, string>> = {
  hard_bounce: 'the address bounced permanently',
  soft_bounce: 'the address bounced repeatedly',
  complaint: 'the recipient marked earlier mail as spam',
  unsubscribe: 'the recipient unsubscribed',
  manual: 'the address was suppressed by an operator',
};

/** A recipient's `reason` when Baton did not send to it because of this suppression. */
export function suppressedReason(s: Suppression): string {
  const detail = s.detail ? `: ${s.detail}` : '';
  return `suppressed (${s.reason}): ${REASON_WORDS[s.reason]}${detail}`;
}

export interface SuppressionView {
  readonly address: string;
  readonly reason: SuppressionReason;
  readonly detail: string | null;
  readonly source: string | null;
  readonly createdAt: string;
  readonly expiresAt: string | null;
}

export function toSuppressionView(s: Suppression): SuppressionView {
  return {
    address: s.address,
    reason: s.reason,
    detail: s.detail,
    source: s.source,
    createdAt: s.createdAt,
    expiresAt: s.expiresAt,
  };
}
