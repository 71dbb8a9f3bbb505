import type { ApiKeyReader } from '../ports.ts';
import { fail } from '../problem.ts';
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
  if (key.status !== 'active') fail('forbidden', 'This API key is suspended.');
  if (!anyOf.some((scope) => key.scopes.includes(scope))) {
    fail('forbidden', `This API key lacks the "${anyOf.join('" or "')}" scope for this request.`);
  }
  if (key.allowedCidrs.length > 0 && !sourceAllowed(sourceIp, key.allowedCidrs)) {
    fail('forbidden', 'This API key may not be used from this source address.');
  }
}
