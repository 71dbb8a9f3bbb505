/**
 * Which key an SMTP connection is, before (or instead of) AUTH: the relay allowlist of issue 12.
 * A key created with `smtpWithoutAuth` relays for its `allowedCidrs` without AUTH; no two
 * non-revoked such keys may share an address, so a connection maps to at most one key.
 *
 * Addresses are matched by `sourceAllowed` (node's BlockList), which reads an IPv4-mapped IPv6
 * address (`::ffff:10.0.0.1`, what a dual-stack socket reports) as its IPv4 address and counts
 * IPv4 inside `::/0` and `::ffff:0:0/96`; the overlap test below follows the same rules, so two
 * keys overlap exactly when some source address would match both.
 */
import { type ApiKey, cidrMatcher, cidrParts, sourceAllowed } from './api-key.ts';

/**
 * The non-revoked `smtpWithoutAuth` key with the `send` scope whose CIDRs hold `sourceIp`, or
 * undefined. A suspended key is returned: the caller checks the status and refuses it in words.
 * Two matching keys (only possible by writing the table by hand, or a creation race the lock in
 * DynamoApiKeyStore.create prevents) give undefined: relaying as either could be the wrong tenant,
 * so the connection must authenticate instead.
 */
export function relayKeyFor(sourceIp: string, keys: readonly ApiKey[]): ApiKey | undefined {
  const matches = keys.filter(
    (key) => isRelayKey(key) && key.allowedCidrs.length > 0 && holds(key, sourceIp),
  );
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * Whether any key could send from `sourceIp`: some non-revoked key with the `send` scope and no
 * CIDRs (any source) or CIDRs that hold it. The SMTP server answers 554 at connect otherwise.
 */
export function sourceMayConnect(sourceIp: string, keys: readonly ApiKey[]): boolean {
  return keys.some((key) => maySend(key) && (key.allowedCidrs.length === 0 || holds(key, sourceIp)));
}

/**
 * Each key's CIDRs as a built matcher, kept as long as the key object lives: CachedKeyDirectory
 * hands every connection the same key objects, so a connection costs a lookup per key rather than
 * a BlockList built per key (1000 keys: 12 ms per connection without this, 0.2 ms with it).
 */
const matchers = new WeakMap<ApiKey, (sourceIp: string) => boolean>();

function holds(key: ApiKey, sourceIp: string): boolean {
  let matcher = matchers.get(key);
  if (matcher === undefined) {
    matcher = cidrMatcher(key.allowedCidrs);
    matchers.set(key, matcher);
  }
  return matcher(sourceIp);
}

/**
 * Non-revoked, with the send scope, and well-formed: every connection reads every item of the
 * table, so an item written by hand without its lists must count as no key rather than throw for
 * everyone.
 */
function maySend(key: ApiKey): boolean {
  return (
    key.status !== 'revoked' &&
    Array.isArray(key.scopes) &&
    key.scopes.includes('send') &&
    Array.isArray(key.allowedCidrs)
  );
}

function isRelayKey(key: ApiKey): boolean {
  return key.smtpWithoutAuth === true && maySend(key);
}

/** Whether some address is in a network of `a` and in a network of `b`. */
export function cidrsOverlap(a: readonly string[], b: readonly string[]): boolean {
  return overlappingNetworks(a, b).length > 0;
}

/** Every pair `[network of a, network of b]` that shares an address, as written, in `a`'s order. */
export function overlappingNetworks(a: readonly string[], b: readonly string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const mine of a) {
    for (const theirs of b) if (networksOverlap(mine, theirs)) pairs.push([mine, theirs]);
  }
  return pairs;
}

/**
 * Two prefixes either nest or are disjoint, so they overlap exactly when the wider one holds an
 * address of the narrower one. Widths are compared in IPv6 terms, an IPv4 /p being the mapped
 * ::ffff:a.b.c.d/(96+p), as node's BlockList treats it. A CIDR node cannot read overlaps nothing,
 * as it allows nothing in `sourceAllowed`.
 */
function networksOverlap(a: string, b: string): boolean {
  const x = cidrParts(a);
  const y = cidrParts(b);
  if (x === undefined || y === undefined) return false;
  const width = (p: { family: 4 | 6; prefix: number }): number => (p.family === 4 ? 96 + p.prefix : p.prefix);
  const [wide, narrow] = width(x) <= width(y) ? [a, y] : [b, x];
  return sourceAllowed(narrow.address, [wide]);
}

/** Every IPv4 address, as node's BlockList sees it inside IPv6. */
const MAPPED_IPV4 = '::ffff:0:0/96';

/**
 * The networks wider than a /8 (IPv4) or a /32 (IPv6, an ISP's allocation) in `cidrs`: relaying
 * without AUTH for those is close to an open relay for the key's domains, worth a warning.
 */
export function wideNetworks(cidrs: readonly string[]): string[] {
  return cidrs.filter((cidr) => {
    const parts = cidrParts(cidr);
    if (parts === undefined) return false;
    if (parts.family === 4) return parts.prefix < 8;
    // IPv4 written in IPv6 terms matches IPv4 sources: judged as the IPv4 network it is.
    if (parts.prefix >= 96 && sourceAllowed(parts.address, [MAPPED_IPV4])) return parts.prefix - 96 < 8;
    return parts.prefix < 32 || sourceAllowed('::ffff:0.0.0.0', [cidr]);
  });
}

/** One no-AUTH key whose networks a new one would share. */
export interface RelayConflict {
  readonly keyId: string;
  readonly tenant: string;
  /** `[network of the new key, network of this key]`, each as written. */
  readonly networks: ReadonlyArray<readonly [string, string]>;
}

/** A no-AUTH key would share source addresses with another one: a connection would be two keys. */
export class RelayNetworksOverlapError extends Error {
  override readonly name = 'RelayNetworksOverlapError';
  readonly conflicts: readonly RelayConflict[];

  constructor(conflicts: readonly RelayConflict[], options?: ErrorOptions) {
    const each = conflicts.map(
      (c) =>
        `key ${c.keyId} (tenant ${c.tenant}): ${c.networks.map(([mine, theirs]) => `${mine} with ${theirs}`).join(', ')}`,
    );
    super(
      `its SMTP networks without AUTH overlap those of ${each.join('; ')}. ` +
        'A connection must map to at most one key: narrow --cidrs, or revoke the other key first.',
      options,
    );
    this.conflicts = conflicts;
  }
}

/**
 * Throws RelayNetworksOverlapError when `key` relays without AUTH for an address that another
 * non-revoked no-AUTH key in `keys` relays for too. Suspended keys count: resuming one must not
 * make two keys claim an address. A key that needs AUTH is not checked (its CIDRs only narrow it).
 */
export function assertRelayNetworksFree(key: ApiKey, keys: readonly ApiKey[]): void {
  if (key.smtpWithoutAuth !== true) return;
  const conflicts: RelayConflict[] = [];
  for (const other of keys) {
    if (other.keyId === key.keyId || other.smtpWithoutAuth !== true || other.status === 'revoked') continue;
    if (!Array.isArray(other.allowedCidrs)) continue;
    const networks = overlappingNetworks(key.allowedCidrs, other.allowedCidrs);
    if (networks.length > 0) conflicts.push({ keyId: other.keyId, tenant: other.tenant, networks });
  }
  if (conflicts.length > 0) throw new RelayNetworksOverlapError(conflicts);
}

/** Another creation of a no-AUTH key holds the relay lock, and kept it past our wait. */
export class ApiKeyLockedError extends Error {
  override readonly name = 'ApiKeyLockedError';
  readonly lockedUntil: Date;

  constructor(lockedUntil: Date, options?: ErrorOptions) {
    super(
      `another creation of an SMTP key without AUTH holds the lock on their networks until ${lockedUntil.toISOString()}; try again then`,
      options,
    );
    this.lockedUntil = lockedUntil;
  }
}
