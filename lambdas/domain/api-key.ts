import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['send', 'read', 'suppressions'] as const;
export type Scope = (typeof SCOPES)[number];
export type KeyStatus = 'active' | 'suspended' | 'revoked';
export type SenderPolicy = 'reject' | 'rewrite';

/** An ApiKeys item. The secret itself is never stored, only its SHA-256. */
export interface ApiKey {
  readonly keyId: string;
  readonly secretHash: string;
  readonly tenant: string;
  readonly name?: string;
  readonly scopes: readonly Scope[];
  /** Domains the key may send from (a subdomain of a listed domain is allowed too). */
  readonly allowedDomains: readonly string[];
  /** Source CIDRs the key may be used from; empty = anywhere. */
  readonly allowedCidrs: readonly string[];
  readonly senderPolicy: SenderPolicy;
  /** With policy `rewrite`: the verified address that replaces a From outside `allowedDomains`. */
  readonly defaultFrom?: string;
  readonly status: KeyStatus;
  /** Messages this key may send per UTC day; absent = unlimited. */
  readonly dailyQuota?: number;
  /** Requests per second this key may make; absent = unlimited (API Gateway's stage limit still applies). */
  readonly rateLimit?: number;
  readonly createdAt: string;
  readonly updatedAt?: string;
}

const KEY_FORMAT = /^bt_([a-z0-9]{8,32})_([A-Za-z0-9_-]{20,200})$/;

/** `Authorization: Bearer <token>` → token; anything else → undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}

/**
 * The ApiKeys partition key for a token. Keys Baton issues are `bt_<keyId>_<secret>`; any other
 * token (say, one imported from the relay being replaced) is looked up by a digest of itself, so
 * it still works without Baton ever storing it.
 */
export function keyIdOf(token: string): string {
  const match = KEY_FORMAT.exec(token);
  if (match?.[1]) return match[1];
  return `x${sha256(token).slice(0, 31)}`;
}

export function hashToken(token: string): string {
  return sha256(token);
}

/** Constant-time comparison, so response timing does not leak how much of a guess was right. */
export function tokenMatches(token: string, secretHash: string): boolean {
  const actual = Buffer.from(sha256(token), 'hex');
  const expected = Buffer.from(secretHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A new key: 12 random characters of id and 256 bits of secret. */
export function generateApiKey(): { keyId: string; token: string } {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const keyId = [...randomBytes(12)].map((b) => alphabet[b % alphabet.length]).join('');
  const secret = randomBytes(32).toString('base64url');
  return { keyId, token: `bt_${keyId}_${secret}` };
}

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}
