import { spf } from 'mailauth/lib/spf/index.js';
import { type DnsAnswer, DnsLookupError, type DnsPort } from './dns.ts';
import { OUTSIDE_ZONE } from './zone-dns.ts';

/**
 * An address SES sends from (54.240.0.0/18 is in amazonses.com's SPF record): the client IP an SPF
 * check is evaluated for, as a receiver would see mail relayed by SES.
 */
export const SES_SENDING_ADDRESS = '54.240.8.1';

export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';

export interface SpfEvaluation {
  readonly result: SpfResult;
  /** mailauth's comment (why), when it gave one. */
  readonly comment: string | undefined;
  /** Domains a zone file does not hold, taken as authorising nothing (offline only). */
  readonly notEvaluated: readonly string[];
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
  };
}

function isSpfResult(value: string): value is SpfResult {
  return ['pass', 'fail', 'softfail', 'neutral', 'none', 'permerror', 'temperror'].includes(value);
}

/** node:dns's shape: records, or the error codes mailauth reads as "no such record". */
function toNode<T, U>(answer: DnsAnswer<T>, map: (r: T) => U): U[] {
  if (answer.status === 'nxdomain') throw Object.assign(new Error('NXDOMAIN'), { code: 'ENOTFOUND' });
  if (answer.status === 'nodata') throw Object.assign(new Error('NODATA'), { code: 'ENODATA' });
  return answer.records.map(map);
}
