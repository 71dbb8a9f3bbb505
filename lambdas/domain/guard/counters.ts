/**
 * The abuse guard's hourly counters (issue 13): what is counted, per which scope, per which hour.
 * Types and pure hour arithmetic only; the port is `GuardCounters` in ../ports.ts, the DynamoDB
 * adapter adapters/guard-counter-store.ts.
 */

/** What is counted per key and per tenant, per hour (the guard's policy reads these). */
export const GUARD_COUNTERS = [
  'sends',
  /**
   * Recipients of held mail an operator released: sends for every rate (their bounces count), but
   * not for the volume spike or the baseline (a release is not the key's own pace).
   */
  'releasedSends',
  'hardBounces',
  'complaints',
  'transientBounces',
  'suppressedHits',
  'contentRefusals',
  'newRecipientDomains',
] as const;
export type GuardCounter = (typeof GUARD_COUNTERS)[number];

/** The kind of scope a counter, a rule or a decision belongs to. */
export type GuardScope = 'tenant' | 'key';

/** Whose counters: one API key's, or a whole tenant's (every key of it together). */
export type GuardScopeRef =
  | { readonly kind: Extract<GuardScope, 'key'>; readonly keyId: string }
  | { readonly kind: Extract<GuardScope, 'tenant'>; readonly tenant: string };

export type GuardCounts = Readonly<Partial<Record<GuardCounter, number>>>;

/** One scope's counts for one hour; a counter never counted in that hour is absent. */
export interface HourBucket {
  /** The hour, UTC, as `YYYY-MM-DDTHH` (see `hourOf`). */
  readonly hour: string;
  readonly counts: GuardCounts;
}

/** The longest window the guard looks back over is 30 days; counters are kept a few days longer. */
export const GUARD_RETENTION_DAYS = 35;

/** What one event (or one accepted request) adds to one scope's hour. */
export interface GuardIncrement {
  readonly scope: GuardScopeRef;
  readonly hour: string;
  readonly counts: GuardCounts;
  /**
   * The event this increment comes from (an SES feedback event and recipient, say). An increment
   * with an event id counts once per scope, however often it is added: a redelivered event changes
   * nothing. Without one, every `add` counts (the accept path counts what it accepted, once).
   */
  readonly eventId?: string;
}

/** `YYYY-MM-DDTHH`: the leading 13 characters of an ISO timestamp in UTC, so hours sort as strings. */
const HOUR = /^\d{4}-\d{2}-\d{2}T\d{2}$/;
export const MS_PER_HOUR = 3_600_000;

/** The UTC hour `at` falls in. */
export function hourOf(at: Date): string {
  return at.toISOString().slice(0, 13);
}

/** True for a real hour in the `hourOf` format (not `2025-02-30T25`). */
export function isHour(value: string): boolean {
  return (
    HOUR.test(value) && !Number.isNaN(Date.parse(`${value}:00:00Z`)) && hourOf(hourStart(value)) === value
  );
}

/** The first instant of `hour`. */
export function hourStart(hour: string): Date {
  return new Date(`${hour}:00:00Z`);
}

/** The hour `n` hours after `hour` (before it, for a negative `n`). */
export function addHours(hour: string, n: number): string {
  return hourOf(new Date(hourStart(hour).getTime() + n * MS_PER_HOUR));
}

/** Every hour from `from` to `to`, both included, in order; empty when `to` is before `from`. */
export function hoursBetween(from: string, to: string): string[] {
  const hours: string[] = [];
  for (let hour = from; hour <= to; hour = addHours(hour, 1)) hours.push(hour);
  return hours;
}

/** An increment or a range the counters cannot take: a bug in the caller, not a store failure. */
export class InvalidGuardCountError extends RangeError {
  override readonly name = 'InvalidGuardCountError';
}

/** A name for the scope that no other scope shares (`key:<keyId>`, `tenant:<tenant>`). */
export function scopeName(scope: GuardScopeRef): string {
  return scope.kind === 'key' ? `key:${scope.keyId}` : `tenant:${scope.tenant}`;
}

/** Longest scope id: real ones are far shorter (key ids 32, tenants 64 characters). */
const MAX_SCOPE_ID = 200;

/** Throws InvalidGuardCountError unless the scope has an id a store can key (1-200 characters, well-formed). */
export function checkScope(scope: GuardScopeRef): void {
  const id = scope.kind === 'key' ? scope.keyId : scope.tenant;
  if (typeof id !== 'string' || id === '') throw new InvalidGuardCountError('a guard scope needs an id');
  if (id.length > MAX_SCOPE_ID || !id.isWellFormed()) {
    throw new InvalidGuardCountError(
      `a guard scope id is 1-${MAX_SCOPE_ID} characters of well-formed Unicode`,
    );
  }
}

/**
 * Throws InvalidGuardCountError unless the increment names a scope, a real hour and counts that are
 * whole numbers of zero or more (a negative count would let a caller erase a key's bounces).
 */
export function checkIncrement(increment: GuardIncrement): void {
  checkScope(increment.scope);
  if (!isHour(increment.hour))
    throw new InvalidGuardCountError(`"${increment.hour}" is not an hour (YYYY-MM-DDTHH)`);
  if (increment.eventId === '') throw new InvalidGuardCountError('an event id cannot be empty');
  for (const [counter, n] of Object.entries(increment.counts)) {
    if (!(GUARD_COUNTERS as readonly string[]).includes(counter)) {
      throw new InvalidGuardCountError(`"${counter}" is not a guard counter`);
    }
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw new InvalidGuardCountError(`the count of ${counter} must be a whole number of zero or more`);
    }
  }
}

/**
 * The hours a read covers, in order, after checking the range: real hours, at most `maxHours` of
 * them (a read longer than the counters are kept is a bug, and would cost reads for nothing).
 */
export function hoursToRead(fromHour: string, toHour: string, maxHours: number): string[] {
  for (const hour of [fromHour, toHour]) {
    if (!isHour(hour)) throw new InvalidGuardCountError(`"${hour}" is not an hour (YYYY-MM-DDTHH)`);
  }
  const span = (hourStart(toHour).getTime() - hourStart(fromHour).getTime()) / MS_PER_HOUR + 1;
  if (span > maxHours) {
    throw new InvalidGuardCountError(`a read covers at most ${maxHours} hours, not ${span}`);
  }
  return hoursBetween(fromHour, toHour);
}
