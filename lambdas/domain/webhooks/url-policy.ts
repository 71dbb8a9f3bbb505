/**
 * Where a webhook may be delivered (issue 14, "SSRF and abuse"): the registration check on the URL
 * a tenant gives, and the connect-time check on the address its host resolves to. The second exists
 * because a public name can resolve to a private address later (DNS rebinding), so the delivery
 * function must judge the address it is about to connect to, not the name it was given. Both share
 * one table of ranges so they cannot disagree about an IP literal. Pure: no DNS, no sockets.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** Longer URLs are refused: no receiver needs one, and they end up in every delivery record. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

export type WebhookUrlCheck =
  | { readonly ok: true; readonly url: string }
  | { readonly ok: false; readonly reason: string };

export interface WebhookUrlOptions {
  /** Local mode only: also allow `http:` (and `https:`) to 127.0.0.1, localhost and [::1]. */
  readonly allowLoopbackHttp: boolean;
}

interface Range {
  readonly block: BlockList;
  readonly family: 'ipv4' | 'ipv6';
  readonly cidr: string;
  /** How the reason names an address in the range, with its article. */
  readonly what: string;
}

const range = (family: Range['family'], cidr: string, what: string): Range => {
  const [network = '', bits = ''] = cidr.split('/');
  const block = new BlockList();
  block.addSubnet(network, Number(bits), family);
  return { block, family, cidr, what };
};

// Order matters: the first match names the reason, so a narrower range precedes the one holding it.
const IPV4_REFUSED: readonly Range[] = [
  range('ipv4', '0.0.0.0/8', 'a "this network" address'),
  range('ipv4', '10.0.0.0/8', 'a private address'),
  range('ipv4', '100.64.0.0/10', 'a carrier-grade NAT address'),
  range('ipv4', '127.0.0.0/8', 'a loopback address'),
  range('ipv4', '169.254.169.254/32', 'the cloud instance metadata address'),
  range('ipv4', '169.254.0.0/16', 'a link-local address'),
  range('ipv4', '172.16.0.0/12', 'a private address'),
  range('ipv4', '192.0.0.0/24', 'an IETF protocol assignment address'),
  range('ipv4', '192.0.2.0/24', 'a documentation address'),
  range('ipv4', '192.88.99.0/24', 'a 6to4 relay anycast address'),
  range('ipv4', '192.168.0.0/16', 'a private address'),
  range('ipv4', '198.18.0.0/15', 'a benchmarking address'),
  range('ipv4', '198.51.100.0/24', 'a documentation address'),
  range('ipv4', '203.0.113.0/24', 'a documentation address'),
  range('ipv4', '224.0.0.0/4', 'a multicast address'),
  range('ipv4', '255.255.255.255/32', 'the broadcast address'),
  range('ipv4', '240.0.0.0/4', 'a reserved address'),
];

// The unspecified and loopback addresses sit inside ::/96 but embed no IPv4 anyone means: checked first.
const IPV6_UNSPECIFIED_AND_LOOPBACK: readonly Range[] = [
  range('ipv6', '::/128', 'the unspecified address'),
  range('ipv6', '::1/128', 'the loopback address'),
];

const IPV6_REFUSED: readonly Range[] = [
  ...IPV6_UNSPECIFIED_AND_LOOPBACK,
  range('ipv6', '64:ff9b:1::/48', 'a local-use NAT64 address'),
  range('ipv6', '100::/64', 'a discard-only address'),
  range('ipv6', '2001::/23', 'an IETF protocol assignment address'),
  range('ipv6', '2001:db8::/32', 'a documentation address'),
  range('ipv6', '3fff::/20', 'a documentation address'),
  range('ipv6', 'fc00::/7', 'a unique local (private) address'),
  range('ipv6', 'fe80::/10', 'a link-local address'),
  range('ipv6', 'fec0::/10', 'a site-local address'),
  range('ipv6', 'ff00::/8', 'a multicast address'),
];

/** Only this block is allocated for global unicast today; anything else is reserved. */
const IPV6_GLOBAL_UNICAST = range('ipv6', '2000::/3', 'a global unicast address');

// Prefixes whose addresses carry an IPv4 address, which is where a connection really goes. Node's
// BlockList itself lets IPv4 rules match mapped addresses and vice versa, so ranges are only ever
// checked against addresses of their own family and the embedded IPv4 is taken out by hand.
const EMBEDDING: ReadonlyArray<{ readonly range: Range; readonly at: number }> = [
  { range: range('ipv6', '::ffff:0:0/96', 'an IPv4-mapped address'), at: 6 },
  { range: range('ipv6', '::/96', 'an IPv4-compatible address'), at: 6 },
  { range: range('ipv6', '64:ff9b::/96', 'a NAT64 address'), at: 6 },
  { range: range('ipv6', '2002::/16', 'a 6to4 address'), at: 1 },
];

/**
 * The connect-time check: why `ip` (a resolved address, no brackets) is not a public unicast
 * address, or undefined when it is one. A malformed address and any zone id are refused.
 */
export const refusedAddress = (ip: string): string | undefined => {
  if (ip.includes('%')) {
    // A zone id only makes sense on a link-scoped address, and no such address is ever public.
    return `${ip} carries a zone id (a link-scoped address)`;
  }
  if (isIPv4(ip)) return refusedIpv4(ip, ip);
  if (isIPv6(ip)) return refusedIpv6(ip);
  return `${ip} is not a valid IP address`;
};

const refusedIpv4 = (ipv4: string, shown: string): string | undefined => {
  const hit = IPV4_REFUSED.find((r) => r.block.check(ipv4, 'ipv4'));
  return hit && `${shown} is ${hit.what} (${hit.cidr})`;
};

const refusedIpv6 = (ip: string): string | undefined => {
  const special = IPV6_UNSPECIFIED_AND_LOOPBACK.find((r) => r.block.check(ip, 'ipv6'));
  if (special) return `${ip} is ${special.what} (${special.cidr})`;
  const embedding = EMBEDDING.find((e) => e.range.block.check(ip, 'ipv6'));
  if (embedding) {
    const groups = ipv6Groups(ip);
    const high = groups[embedding.at] ?? 0;
    const low = groups[embedding.at + 1] ?? 0;
    const ipv4 = `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
    return refusedIpv4(ipv4, `${ip}, ${embedding.range.what} of ${ipv4},`);
  }
  const hit = IPV6_REFUSED.find((r) => r.block.check(ip, 'ipv6'));
  if (hit) return `${ip} is ${hit.what} (${hit.cidr})`;
  if (!IPV6_GLOBAL_UNICAST.block.check(ip, 'ipv6')) {
    return `${ip} is a reserved address (outside the global unicast block ${IPV6_GLOBAL_UNICAST.cidr})`;
  }
  return undefined;
};

/** The eight 16-bit groups of an address `isIPv6` accepted (a dotted IPv4 tail included). */
const ipv6Groups = (ip: string): number[] => {
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [Number.parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head = '', tail] = ip.split('::');
  const before = parse(head);
  const after = tail === undefined ? [] : parse(tail);
  return [...before, ...Array<number>(8 - before.length - after.length).fill(0), ...after];
};

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

// Names that never resolve on the public internet (RFC 6761, 6762, 8375, cloud-internal zones).
const PRIVATE_SUFFIXES: readonly string[] = ['localhost', 'local', 'internal', 'arpa'];

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * The registration check. On success `url` is the parser's normalised form (lowercase host,
 * punycode, IPv4 in dotted quad): store and deliver to that, since it is the form that was judged.
 */
export const checkWebhookUrl = (raw: unknown, options: WebhookUrlOptions): WebhookUrlCheck => {
  if (typeof raw !== 'string') return refuse('the URL must be a string');
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) {
    return refuse(`the URL must be at most ${MAX_WEBHOOK_URL_LENGTH} characters long`);
  }
  // WHATWG refuses zone ids outright; say so instead of a bare "not a valid URL".
  if (/^[a-z][a-z0-9+.-]*:\/\/(?:[^/?#]*@)?\[[^\]]*%/i.test(raw.trim())) {
    return refuse('the host must not carry an IPv6 zone id');
  }
  // The WHATWG parser is what the delivery's HTTP client uses too: decimal, octal, hex and short
  // IPv4 spellings come out as the dotted quad they connect to, so those are what get judged.
  const url = URL.parse(raw);
  if (url === null) return refuse('the URL is not a valid absolute URL');
  if (url.href.length > MAX_WEBHOOK_URL_LENGTH) {
    return refuse(`the URL must be at most ${MAX_WEBHOOK_URL_LENGTH} characters long`);
  }
  if (url.username !== '' || url.password !== '') {
    return refuse('the URL must not carry credentials (user or password); each delivery is signed instead');
  }
  if (url.href.includes('#')) return refuse('the URL must not have a fragment (#...)');
  const loopback = LOOPBACK_HOSTS.has(url.hostname);
  if (options.allowLoopbackHttp && loopback && (url.protocol === 'http:' || url.protocol === 'https:')) {
    return { ok: true, url: url.href };
  }
  if (url.protocol !== 'https:') {
    return refuse(
      options.allowLoopbackHttp
        ? 'the URL must use https (http is allowed only to 127.0.0.1, localhost and [::1] in local mode)'
        : 'the URL must use https',
    );
  }
  const reason = refusedHost(url.hostname);
  return reason === undefined ? { ok: true, url: url.href } : refuse(reason);
};

const refusedHost = (hostname: string): string | undefined => {
  if (hostname.startsWith('[')) {
    const reason = refusedAddress(hostname.slice(1, -1));
    return reason && `the host ${reason}`;
  }
  if (isIPv4(hostname)) {
    const reason = refusedAddress(hostname);
    return reason && `the host ${reason}`;
  }
  // A fully qualified name's trailing dot names the same host; judge it without.
  const name = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  const labels = name.split('.');
  if (name.length > 253 || !labels.every((label) => DNS_LABEL.test(label))) {
    return `the host ${hostname} is not a valid DNS name`;
  }
  // The parser already reads a name ending in a number as IPv4 (or refuses it); this guards the
  // day a caller hands over a hostname that did not come through it.
  if (isIPv4(name) || /^(?:\d+|0x[0-9a-f]*)$/.test(labels.at(-1) ?? '')) {
    return `the host ${hostname} is an IP address spelled as a name`;
  }
  const last = labels.at(-1) ?? '';
  if (PRIVATE_SUFFIXES.includes(last)) return `the host ${hostname} is not a public DNS name`;
  if (labels.length < 2)
    return `the host ${hostname} is not a public DNS name (it needs at least two labels)`;
  return undefined;
};

const refuse = (reason: string): WebhookUrlCheck => ({ ok: false, reason });
