import { SEVERITY, type Suppression } from '../suppression/suppression.ts';

/**
 * Transient bounces (mailbox full, message too large, a server refusing for now) suppress an
 * address only when they repeat: THRESHOLD different messages in WINDOW_DAYS, and then only for
 * EXPIRY_DAYS. A message that was delivered after all (an out-of-office reply is a transient
 * bounce followed by a delivery) stops counting.
 */
export const SOFT_BOUNCE_THRESHOLD = 3;
export const SOFT_BOUNCE_WINDOW_DAYS = 7;
export const SOFT_BOUNCE_EXPIRY_DAYS = 14;

const DAY_MS = 86_400_000;

/** Per address: which messages bounced transiently and when (epoch ms). */
export interface SoftBounceState {
  readonly address: string;
  readonly bounces: Readonly<Record<string, number>>;
  /** Optimistic concurrency; 0 for a state not stored yet. */
  readonly version: number;
}

export function emptySoftBounceState(address: string): SoftBounceState {
  return { address, bounces: {}, version: 0 };
}

/** Adds the message's transient bounce (once per message) and forgets those outside the window. */
export function recordSoftBounce(
  state: SoftBounceState,
  messageId: string,
  at: Date,
  now: Date,
): SoftBounceState {
  return { ...state, bounces: { ...withinWindow(state.bounces, now), [messageId]: at.getTime() } };
}

/** The message was delivered after all: its bounce no longer counts. */
export function clearSoftBounce(state: SoftBounceState, messageId: string, now: Date): SoftBounceState {
  const { [messageId]: _delivered, ...rest } = withinWindow(state.bounces, now);
  return { ...state, bounces: rest };
}

export function softBounceCount(state: SoftBounceState, now: Date): number {
  return Object.keys(withinWindow(state.bounces, now)).length;
}

/** The suppression the state calls for, if the bounces have reached the threshold. */
export function softSuppression(
  state: SoftBounceState,
  messageId: string,
  now: Date,
): Suppression | undefined {
  const count = softBounceCount(state, now);
  if (count < SOFT_BOUNCE_THRESHOLD) return undefined;
  return {
    address: state.address,
    reason: 'soft_bounce',
    detail: `${count} messages bounced transiently within ${SOFT_BOUNCE_WINDOW_DAYS} days`,
    source: messageId,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + SOFT_BOUNCE_EXPIRY_DAYS * DAY_MS).toISOString(),
    severity: SEVERITY.soft_bounce,
    evidence: { transientBounces: String(count), windowDays: String(SOFT_BOUNCE_WINDOW_DAYS) },
  };
}

/** When the state can be forgotten: the window after its latest bounce. */
export function softBounceExpiry(state: SoftBounceState): Date {
  const latest = Math.max(0, ...Object.values(state.bounces));
  return new Date(latest + SOFT_BOUNCE_WINDOW_DAYS * DAY_MS);
}

function withinWindow(bounces: Readonly<Record<string, number>>, now: Date): Record<string, number> {
  const since = now.getTime() - SOFT_BOUNCE_WINDOW_DAYS * DAY_MS;
  return Object.fromEntries(Object.entries(bounces).filter(([, at]) => at > since));
}
