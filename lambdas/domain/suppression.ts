/**
 * The suppression list: addresses Baton must not mail. State only moves up by severity
 * (complaint > hard bounce > soft bounce): feedback timestamps cannot order events, so the
 * strongest evidence wins whatever arrives first, and the same event twice changes nothing.
 */

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
