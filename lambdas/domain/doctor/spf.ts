import { spf } from 'mailauth/lib/spf/index.js';
import { type DnsAnswer, DnsLookupError, type DnsPort, dnsName } from './dns.ts';
import { OUTSIDE_ZONE } from './zone-dns.ts';

/**
 * An address SES sends from (54.240.0.0/18 is in amazonses.com's SPF record): the client IP an SPF
 * check is evaluated for, as a receiver would see mail relayed by SES.
 */
export const SES_SENDING_ADDRESS = '54.240.8.1';

const SPF_RESULTS = ['pass', 'fail', 'softfail', 'neutral', 'none', 'permerror', 'temperror'] as const;
export type SpfResult = (typeof SPF_RESULTS)[number];

export interface SpfEvaluation {
  readonly result: SpfResult;
  /** mailauth's comment (why), when it gave one. */
  readonly comment: string | undefined;
  /** Domains a zone file does not hold, taken as authorising nothing (offline only). */
  readonly notEvaluated: readonly string[];
  /** The record read to its end (undefined: no single record to read). */
  readonly lint?: SpfLint | undefined;
}

/**
 * SPF (RFC 7208) of `domain` for mail from an SES address, evaluated by mailauth over the doctor's
 * DNS port so that a zone file works as well as DNS.
 */
export async function evaluateSpf(dns: DnsPort, domain: string): Promise<SpfEvaluation> {
  const notEvaluated: string[] = [];
  const resolver = async (name: string, type: string): Promise<string[][] | string[]> => {
    try {
      if (type === 'TXT') return toNode(await dns.resolveTxt(name), (r) => [...r]);
      if (type === 'MX') {
        // mailauth takes node's MX shape ({ exchange, priority }) where its type says strings.
        return toNode(await dns.resolveMx(name), (r) => ({ ...r })) as unknown as string[];
      }
      // The port has no address records: an SES address is never one of the domain's own hosts,
      // so what `a`, `mx`, `ptr` or `exists` would find cannot match it. Empty is not "void".
      return [];
    } catch (error) {
      if (error instanceof DnsLookupError && error.code === OUTSIDE_ZONE && type === 'TXT') {
        // An include of someone else's domain (a mail provider): a zone file cannot tell, so it
        // authorises nothing here, and the report says so.
        notEvaluated.push(name);
        return [['v=spf1 ?all']];
      }
      if (error instanceof DnsLookupError && error.code === OUTSIDE_ZONE && type === 'MX') {
        // mx:<another domain>: its hosts are not SES's sending address, as for `a` above.
        notEvaluated.push(name);
        return [];
      }
      throw error instanceof DnsLookupError
        ? Object.assign(new Error(error.message), { code: error.code })
        : error;
    }
  };
  const answer = await spf({
    sender: `postmaster@${domain}`,
    ip: SES_SENDING_ADDRESS,
    helo: 'a8-1.smtp-out.amazonses.com',
    mta: 'baton-doctor',
    resolver,
    maxElapsedTime: 20_000,
  });
  const raw = answer.status.result;
  const result: SpfResult = raw === 'temperr' ? 'temperror' : isSpfResult(raw) ? raw : 'temperror';
  return {
    result,
    comment: typeof answer.status.comment === 'string' ? answer.status.comment : undefined,
    notEvaluated,
    lint: await lintSpf(dns, domain),
  };
}

function isSpfResult(value: string): value is SpfResult {
  return (SPF_RESULTS as readonly string[]).includes(value);
}

/** node:dns's shape: records, or the error codes mailauth reads as "no such record". */
function toNode<T, U>(answer: DnsAnswer<T>, map: (r: T) => U): U[] {
  if (answer.status === 'nxdomain') throw Object.assign(new Error('NXDOMAIN'), { code: 'ENOTFOUND' });
  if (answer.status === 'nodata') throw Object.assign(new Error('NODATA'), { code: 'ENODATA' });
  return answer.records.map(map);
}

/** What a receiver would hold against an SPF record beyond the result for SES's address. */
export interface SpfLint {
  /** The terms that cost a DNS lookup (RFC 7208 §4.6.4), counted through include: and redirect=. */
  readonly lookups: number;
  /** `+all` (or a bare `all`): every host on the internet passes. */
  readonly passAll: boolean;
  /** `ptr` terms (RFC 7208 §5.5: SHOULD NOT be used). */
  readonly ptr: boolean;
  /** include:/redirect= targets without an SPF record: permerror when evaluation reaches them. */
  readonly missing: readonly string[];
  /** Targets the lookups could not read (outside a zone file, failed lookup): counted once, not entered. */
  readonly unread: readonly string[];
}

/** RFC 7208 §4.6.4: more terms that query DNS than this is a permerror. */
export const SPF_LOOKUP_LIMIT = 10;

/**
 * Reads `domain`'s SPF record as a receiver's evaluation of a sender matching nothing would: every
 * term to the end, through include: and redirect=. mailauth stops at SES's address, so a record
 * that passes SES can still break every other sender (or let everyone pass).
 */
export async function lintSpf(dns: DnsPort, domain: string): Promise<SpfLint | undefined> {
  let lookups = 0;
  let ptr = false;
  let passAll = false;
  const missing: string[] = [];
  const unread: string[] = [];
  const seen = new Set<string>();

  const recordOf = async (name: string): Promise<string[] | 'unread'> => {
    try {
      const answer = await dns.resolveTxt(name);
      return answer.status === 'found'
        ? answer.records.map((r) => r.join('')).filter((r) => /^v=spf1(\s|$)/i.test(r))
        : [];
    } catch (error) {
      if (error instanceof DnsLookupError) return 'unread';
      throw error;
    }
  };

  const walk = async (record: string, top: boolean, depth: number): Promise<void> => {
    for (const term of record.split(/\s+/).slice(1)) {
      if (term === '') continue;
      const match = /^([-~?+]?)([a-z0-9]+)(?:[:=](.*))?$/i.exec(term);
      if (match === null) continue;
      const qualifier = match[1] ?? '';
      const mechanism = (match[2] ?? '').toLowerCase();
      const target = match[3] === undefined ? undefined : dnsName(match[3]);
      if (mechanism === 'all' && top && (qualifier === '' || qualifier === '+')) passAll = true;
      if (mechanism === 'ptr') ptr = true;
      if (!['include', 'a', 'mx', 'ptr', 'exists', 'redirect'].includes(mechanism)) continue;
      lookups++;
      if ((mechanism !== 'include' && mechanism !== 'redirect') || target === undefined) continue;
      // A macro (%{i}) names a different domain per message: nothing to read ahead of time.
      if (target.includes('%') || seen.has(target) || depth >= 10 || lookups > SPF_LOOKUP_LIMIT) continue;
      seen.add(target);
      const records = await recordOf(target);
      if (records === 'unread') unread.push(target);
      else if (records.length === 0) missing.push(target);
      else if (records.length === 1)
        await walk(records[0] as string, top && mechanism === 'redirect', depth + 1);
    }
  };

  const records = await recordOf(domain);
  if (records === 'unread' || records.length !== 1) return undefined;
  await walk(records[0] as string, true, 0);
  return { lookups, passAll, ptr, missing, unread };
}
