import type { GuardDecision } from '../guard/evaluate.ts';
import { retryAfterSeconds, suspendedByGuard, throttleFor } from '../guard/state.ts';
import type { ApiKeyReader } from '../ports.ts';
import { fail, ProblemError, problem } from '../problem.ts';
import { type ApiKey, keyIdOf, type Scope, sourceAllowed, tokenMatches } from './api-key.ts';

/**
 * The checks every front door makes of a caller's API key, in one place so HTTPS and SMTP cannot
 * disagree: the token is a live key's, the key is active, holds one of the scopes asked for, and
 * may be used from the caller's source address. Throws a ProblemError (`unauthorized` or
 * `forbidden`) whose detail says what is wrong; each front door renders it its own way.
 */
export async function verifyToken(
  keys: ApiKeyReader,
  token: string | undefined,
  sourceIp: string,
  anyOf: readonly Scope[],
): Promise<ApiKey> {
  if (!token) fail('unauthorized', 'Send your API key in the Authorization header: "Bearer <key>".');
  const key = await keys.get(keyIdOf(token));
  if (!key || key.status === 'revoked' || !tokenMatches(token, key.secretHash)) {
    fail('unauthorized', 'The API key is not valid.');
  }
  admitKey(key, sourceIp, anyOf);
  return key;
}

/**
 * The checks of a key the caller already holds (a token it proved, or the key that relays for its
 * network without AUTH): status, scope and source address.
 */
export function admitKey(key: ApiKey, sourceIp: string, anyOf: readonly Scope[]): void {
  if (key.status === 'revoked') fail('unauthorized', 'The API key is not valid.');
  if (key.status !== 'active') fail('forbidden', suspendedWords(key));
  if (!anyOf.some((scope) => key.scopes.includes(scope))) {
    fail('forbidden', `This API key lacks the "${anyOf.join('" or "')}" scope for this request.`);
  }
  if (key.allowedCidrs.length > 0 && !sourceAllowed(sourceIp, key.allowedCidrs)) {
    fail('forbidden', 'This API key may not be used from this source address.');
  }
}

/**
 * Why a suspended key is refused, in words for its owner: the guard's signal and figures, and how
 * it is lifted (an operator's resume, never the key itself). Names the key id, which is no secret,
 * and never an address.
 */
export function suspendedWords(key: ApiKey): string {
  const suspension = suspendedByGuard(key);
  if (suspension === undefined) return 'This API key is suspended.';
  return (
    `This API key was suspended by the abuse guard (${suspension.signal}): ${suspension.reason}. ` +
    `An operator can resume it: npm run guard -- resume --key ${key.keyId} --reason "<why>".`
  );
}

/** Why a throttled key is refused now, in words for its owner, with when it may send again. */
export function throttledWords(throttle: GuardDecision, now: Date): string {
  const retry = retryAfterSeconds(throttle, now);
  return `The abuse guard throttled this API key (${throttle.signal}): ${throttle.reason}. Retry in ${retry} s.`;
}

/**
 * The abuse guard's throttle of a key that sends (issue 13): refused 429 with Retry-After until it
 * lapses, checked before any other work of the request.
 */
export function admitSending(key: ApiKey, now: Date): void {
  const throttle = throttleFor(key.guard, now);
  if (throttle === undefined) return;
  throw new ProblemError(problem('rate_limited', throttledWords(throttle, now)), {
    'retry-after': String(retryAfterSeconds(throttle, now)),
  });
}
