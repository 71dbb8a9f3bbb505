// TEMPORARY stand-in until wt-keys lands (theirs wins at merge).
import { type ApiKey, sourceAllowed } from './api-key.ts';
export function relayKeyFor(sourceIp: string, keys: readonly ApiKey[]): ApiKey | undefined {
  return keys.find(
    (k) =>
      k.status !== 'revoked' &&
      (k as { smtpWithoutAuth?: boolean }).smtpWithoutAuth &&
      sourceAllowed(sourceIp, k.allowedCidrs),
  );
}
export function sourceMayConnect(sourceIp: string, keys: readonly ApiKey[]): boolean {
  return keys.some(
    (k) =>
      k.status !== 'revoked' &&
      k.scopes.includes('send') &&
      (k.allowedCidrs.length === 0 || sourceAllowed(sourceIp, k.allowedCidrs)),
  );
}
