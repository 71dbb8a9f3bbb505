/**
 * The suppression list: addresses Baton must not mail. State only moves up by severity
 * (complaint > hard bounce > soft bounce): feedback timestamps cannot order events, so the
 * strongest evidence wins whatever arrives first, and the same event twice changes nothing.
 *
 * Entries have a scope. Evidence from SES (hard bounces, soft bounces, complaints) is global: the
 * address is bad for everyone, as on SES's account-level list, so every tenant sees it and only an
 * operator (a key with the `admin` scope) lifts it. What a tenant decides (manual, unsubscribe,
 * erasure) belongs to that tenant: it blocks only that tenant's mail and only that tenant reads,
 * lists or lifts it; otherwise one tenant could stop any address for all the others.
 */

export const SUPPRESSION_REASONS = [
  'hard_bounce',
  'soft_bounce',
  'complaint',
  'unsubscribe',
  'manual',
] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

/** Reasons that come from SES's evidence about the address, and so hold for every tenant. */
export const GLOBAL_REASONS: readonly SuppressionReason[] = ['hard_bounce', 'soft_bounce', 'complaint'];

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
  /** The tenant whose entry this is (manual, unsubscribe, erasure); absent for a global entry. */
  readonly tenant?: string;
  /**
   * Set when an erasure tombstone answers for the address (never stored): its pseudonym, which a
   * new record holds instead of the address, so the address is not stored again.
   */
  readonly erasedAs?: string;
}

/** The stronger of two entries for one address (an absent one loses); the global one on a tie. */
export function stronger(a: Suppression | undefined, b: Suppression | undefined): Suppression | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.severity !== b.severity) return a.severity > b.severity ? a : b;
  return a.tenant === undefined ? a : b;
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

type OperatorReason = 'manual' | 'unsubscribe';

/** A permanent entry made through the API (a tenant's, or erasure's tombstone); global without a tenant. */
export function operatorSuppression(
  address: string,
  reason: OperatorReason,
  detail: string | null,
  now: Date,
  tenant?: string,
): Suppression {
  return {
    ...(tenant === undefined ? {} : { tenant }),
    address,
    reason,
    detail,
    source: 'api',
    createdAt: now.toISOString(),
    expiresAt: null,
    severity: SEVERITY[reason],
  };
}

export const REASON_WORDS: Readonly<Record<SuppressionReason, string>> = {
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
  /** `global`: SES's evidence, applies to every tenant, lifted by an operator; `tenant`: the caller's own. */
  readonly scope: 'global' | 'tenant';
}

export function toSuppressionView(s: Suppression): SuppressionView {
  return {
    address: s.address,
    reason: s.reason,
    detail: s.detail,
    source: s.source,
    createdAt: s.createdAt,
    expiresAt: s.expiresAt,
    scope: s.tenant === undefined ? 'global' : 'tenant',
  };
}
