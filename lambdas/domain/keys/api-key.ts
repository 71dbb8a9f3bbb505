import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { asciiDomain, domainAllowed, domainOf, type ParseResult, parseAddrSpec } from '../address.ts';
import type { KeyGuardMark } from '../guard/state.ts';
import type { FieldError } from '../problem.ts';

/**
 * `admin` is the operator's: it lifts global suppressions (bounces, complaints), which hold for every
 * tenant and which a tenant's `suppressions` scope may read but not lift.
 */
export const SCOPES = ['send', 'read', 'suppressions', 'admin', 'webhooks'] as const;
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
  /**
   * SMTP relays for `allowedCidrs` without AUTH, as a classic relay allowlist does: a connection
   * from those networks sends as this key. Needs non-empty `allowedCidrs` and the `send` scope, and
   * no other non-revoked such key may overlap them (relay.ts), so a source maps to one key.
   */
  readonly smtpWithoutAuth?: boolean;
  /**
   * The abuse guard's state of this key and, copied, of its tenant (domain/guard/state.ts): read
   * with the key, so enforcing the guard costs no extra read. A guard suspension also sets
   * `status` to `suspended`; its decision (signal, figures, reason) is in `guard.key.actions`.
   */
  readonly guard?: KeyGuardMark;
  readonly createdAt: string;
  readonly updatedAt?: string;
}

const KEY_FORMAT = /^bt_([a-z0-9]{8,32})_([A-Za-z0-9_-]{20,200})$/;
/** A key id as `keys list` shows it (the id part of KEY_FORMAT). */
export const KEY_ID = /^[a-z0-9]{8,32}$/;

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

/** Tenants become an SES message tag value, which allows only these characters. */
export const TENANT = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_NAME = 200;
/** Control characters and line or paragraph separators: what one line of plain text may not hold. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
export const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Scopes a key gets when none are asked for: send mail and read its own messages' status. */
export const DEFAULT_SCOPES: readonly Scope[] = ['send', 'read'];

/** What an operator chooses about a key; the rest (id, hash, status, dates) Baton decides. */
export type ApiKeySpec = Pick<
  ApiKey,
  | 'tenant'
  | 'name'
  | 'scopes'
  | 'allowedDomains'
  | 'allowedCidrs'
  | 'senderPolicy'
  | 'defaultFrom'
  | 'dailyQuota'
  | 'rateLimit'
  | 'smtpWithoutAuth'
>;

/** A spec as typed by a person (the CLI's flags), before validation. */
export interface ApiKeySpecInput {
  readonly tenant?: string;
  readonly name?: string;
  readonly scopes?: readonly string[];
  readonly allowedDomains?: readonly string[];
  readonly allowedCidrs?: readonly string[];
  readonly senderPolicy?: string;
  readonly defaultFrom?: string;
  readonly dailyQuota?: number;
  readonly rateLimit?: number;
  readonly smtpWithoutAuth?: boolean;
}

export type SpecResult =
  | { readonly ok: true; readonly value: ApiKeySpec }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

/**
 * Checks a key spec and returns it normalised (domains in lower-case punycode, duplicates
 * dropped), or every problem at once. Whatever passes here is safe for the api function to use:
 * an invalid CIDR would otherwise fail every request of the key, and a tenant with other
 * characters would be refused by SES as a message tag.
 */
export function validateKeySpec(input: ApiKeySpecInput): SpecResult {
  const errors: FieldError[] = [];
  const tenant = input.tenant?.trim() ?? '';
  if (!TENANT.test(tenant)) {
    errors.push({
      path: 'tenant',
      message:
        tenant === ''
          ? 'is required'
          : `"${tenant}" must be 1-64 letters, digits, "_" or "-" (it becomes an SES message tag)`,
    });
  }

  const name = input.name?.trim();
  if (name !== undefined && (name.length > MAX_NAME || CONTROL.test(name))) {
    errors.push({
      path: 'name',
      message: `must be at most ${MAX_NAME} characters without control characters`,
    });
  }

  const scopes: Scope[] = [];
  for (const [i, raw] of (input.scopes ?? DEFAULT_SCOPES).entries()) {
    const scope = raw.trim();
    if (!(SCOPES as readonly string[]).includes(scope)) {
      errors.push({ path: `scopes[${i}]`, message: `"${scope}" is not a scope; use ${SCOPES.join(', ')}` });
    } else if (!scopes.includes(scope as Scope)) scopes.push(scope as Scope);
  }
  if (input.scopes !== undefined && input.scopes.length === 0) {
    errors.push({ path: 'scopes', message: `must name at least one of ${SCOPES.join(', ')}` });
  }

  const allowedDomains: string[] = [];
  for (const [i, raw] of (input.allowedDomains ?? []).entries()) {
    const domain = asciiDomain(raw.trim().toLowerCase());
    if (!domain.ok) errors.push({ path: `allowedDomains[${i}]`, message: `"${raw}": ${domain.message}` });
    else if (!allowedDomains.includes(domain.value)) allowedDomains.push(domain.value);
  }
  if ((input.allowedDomains ?? []).length === 0) {
    errors.push({ path: 'allowedDomains', message: 'must list at least one domain the key may send from' });
  }

  const allowedCidrs: string[] = [];
  for (const [i, raw] of (input.allowedCidrs ?? []).entries()) {
    const cidr = parseCidr(raw);
    if (!cidr.ok) errors.push({ path: `allowedCidrs[${i}]`, message: `"${raw}": ${cidr.message}` });
    else if (!allowedCidrs.includes(cidr.value)) allowedCidrs.push(cidr.value);
  }

  const policy = input.senderPolicy?.trim() ?? 'reject';
  const senderPolicy: SenderPolicy | undefined =
    policy === 'reject' || policy === 'rewrite' ? policy : undefined;
  if (!senderPolicy)
    errors.push({ path: 'senderPolicy', message: `"${policy}" must be "reject" or "rewrite"` });

  let defaultFrom: string | undefined;
  if (input.defaultFrom !== undefined) {
    const parsed = parseAddrSpec(input.defaultFrom);
    if (!parsed.ok) {
      errors.push({ path: 'defaultFrom', message: `"${input.defaultFrom}": ${parsed.message}` });
    } else {
      defaultFrom = parsed.value;
      if (allowedDomains.length > 0 && !domainAllowed(domainOf(defaultFrom), allowedDomains)) {
        errors.push({
          path: 'defaultFrom',
          message: `"${defaultFrom}" must be in one of the key's domains (${allowedDomains.join(', ')})`,
        });
      }
    }
  }
  if (senderPolicy === 'rewrite' && input.defaultFrom === undefined) {
    errors.push({
      path: 'defaultFrom',
      message: 'is required with the rewrite policy (the From used instead)',
    });
  }
  if (senderPolicy === 'reject' && input.defaultFrom !== undefined) {
    errors.push({ path: 'defaultFrom', message: 'applies only to the rewrite policy' });
  }

  for (const field of ['dailyQuota', 'rateLimit'] as const) {
    const value = input[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
      errors.push({ path: field, message: `must be a positive whole number, got ${String(value)}` });
    }
  }

  // Without AUTH the source address is the only credential: it must name networks, and what
  // they may do is send (the one thing SMTP does).
  if (input.smtpWithoutAuth === true) {
    if (allowedCidrs.length === 0 && (input.allowedCidrs ?? []).length === 0) {
      errors.push({
        path: 'smtpWithoutAuth',
        message:
          'needs the source networks it relays for (--cidrs): without AUTH the source address is the only credential',
      });
    }
    if (!scopes.includes('send')) {
      errors.push({ path: 'smtpWithoutAuth', message: 'needs the send scope (relaying is sending)' });
    }
  }

  if (errors.length > 0 || !senderPolicy) return { ok: false, errors };
  return {
    ok: true,
    value: {
      tenant,
      ...(name ? { name } : {}),
      scopes,
      allowedDomains,
      allowedCidrs,
      senderPolicy,
      ...(defaultFrom !== undefined ? { defaultFrom } : {}),
      ...(input.dailyQuota !== undefined ? { dailyQuota: input.dailyQuota } : {}),
      ...(input.rateLimit !== undefined ? { rateLimit: input.rateLimit } : {}),
      ...(input.smtpWithoutAuth === true ? { smtpWithoutAuth: true } : {}),
    },
  };
}

/**
 * `10.0.0.0/8`, `2001:db8::/32` or a single address. Checked by adding it to a node:net BlockList
 * the way `sourceAllowed` does, so a stored CIDR never fails there.
 */
export function parseCidr(raw: string): ParseResult<string> {
  const text = raw.trim();
  const [ip = '', bits, extra] = text.split('/');
  const family = isIP(ip);
  if (family === 0 || ip.includes('%'))
    return { ok: false, message: 'is not an IPv4 or IPv6 address or CIDR' };
  const max = family === 6 ? 128 : 32;
  if (extra !== undefined || (bits !== undefined && !/^[0-9]{1,3}$/.test(bits)) || Number(bits) > max) {
    return { ok: false, message: `the prefix length must be a number from 0 to ${max}` };
  }
  try {
    addCidr(new BlockList(), text);
  } catch (error) {
    return { ok: false, message: `is not a valid CIDR (${(error as Error).message})` };
  }
  const address = ip.toLowerCase();
  return { ok: true, value: bits === undefined ? address : `${address}/${Number(bits)}` };
}

/** Whether `sourceIp` is inside one of a key's allowed CIDRs. */
export function sourceAllowed(sourceIp: string, cidrs: readonly string[]): boolean {
  return isIP(sourceIp) !== 0 && cidrMatcher(cidrs)(sourceIp);
}

/**
 * `sourceAllowed` for one list of CIDRs and many addresses: the BlockList is built once (the SMTP
 * relay tests every key's CIDRs on every connection).
 */
export function cidrMatcher(cidrs: readonly string[]): (sourceIp: string) => boolean {
  const list = new BlockList();
  try {
    for (const cidr of cidrs) addCidr(list, cidr);
  } catch {
    // A CIDR written to the table by hand that node cannot read allows nothing, rather than a 500.
    return () => false;
  }
  return (sourceIp) => {
    const family = isIP(sourceIp);
    return family !== 0 && list.check(sourceIp, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * A CIDR that `parseCidr` accepted, in parts: its address as written, its family, and its prefix
 * length (a single address is a /32 or /128). Undefined for one it would refuse.
 */
export function cidrParts(
  cidr: string,
): { readonly address: string; readonly family: 4 | 6; readonly prefix: number } | undefined {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) return undefined;
  const [address = '', bits] = parsed.value.split('/');
  const family = isIP(address) === 6 ? 6 : 4;
  return { address, family, prefix: bits === undefined ? (family === 6 ? 128 : 32) : Number(bits) };
}

/** Throws when node cannot read the CIDR. */
function addCidr(list: BlockList, cidr: string): void {
  const [ip = '', bits] = cidr.trim().split('/');
  const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) list.addAddress(ip, type);
  else list.addSubnet(ip, Number(bits), type);
}

/** A new key for `spec`: the item to store (hash only) and the token to hand out once. */
export function issueKey(
  spec: ApiKeySpec,
  now: Date,
  generate: () => { keyId: string; token: string } = generateApiKey,
): { key: ApiKey; token: string } {
  const { keyId, token } = generate();
  return {
    token,
    key: { keyId, secretHash: hashToken(token), ...spec, status: 'active', createdAt: now.toISOString() },
  };
}

/** A key as shown to operators: everything but the hash. */
export type ApiKeySummary = Omit<ApiKey, 'secretHash'>;

export function summarise(key: ApiKey): ApiKeySummary {
  const { secretHash: _hash, ...rest } = key;
  return rest;
}

/** No key has this id. */
export class ApiKeyNotFoundError extends Error {
  override readonly name = 'ApiKeyNotFoundError';
  readonly keyId: string;

  constructor(keyId: string, options?: ErrorOptions) {
    super(`no API key has the id ${keyId}`, options);
    this.keyId = keyId;
  }
}

/** A revoked key is revoked for good: it can be neither resumed nor suspended. */
export class ApiKeyRevokedError extends Error {
  override readonly name = 'ApiKeyRevokedError';
  readonly keyId: string;

  constructor(keyId: string, options?: ErrorOptions) {
    super(`the API key ${keyId} is revoked, which is permanent; create a new key instead`, options);
    this.keyId = keyId;
  }
}
