/**
 * The doctor's view of DNS: three record types, and an answer that tells "there is no such record"
 * (NXDOMAIN, NODATA: something to publish) from "the lookup failed" (a timeout, SERVFAIL: nothing
 * can be concluded), which throws {@link DnsLookupError}.
 */

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

export type DnsAnswer<T> =
  | { readonly status: 'found'; readonly records: readonly T[] }
  /** The name does not exist. */
  | { readonly status: 'nxdomain' }
  /** The name exists, without records of that type. */
  | { readonly status: 'nodata' };

export interface DnsPort {
  /** TXT records, each as its character-strings (join them to read the record). */
  resolveTxt(name: string): Promise<DnsAnswer<readonly string[]>>;
  resolveCname(name: string): Promise<DnsAnswer<string>>;
  resolveMx(name: string): Promise<DnsAnswer<MxRecord>>;
  /**
   * The names at or below `suffix` that have records, where the source can list them (a zone file
   * can, DNS cannot): how the DKIM CNAMEs are found when SES's tokens are not known.
   */
  readonly namesUnder?: (suffix: string) => readonly string[];
  /** Where the answers come from, for the report ("DNS", "zone file example.zone"). */
  readonly description: string;
}

/** A lookup that neither found records nor proved there are none. */
export class DnsLookupError extends Error {
  override readonly name = 'DnsLookupError';
  readonly code: string;
  readonly domain: string;

  constructor(domain: string, code: string, options?: ErrorOptions) {
    super(`DNS lookup of ${domain} failed (${code})`, options);
    this.code = code;
    this.domain = domain;
  }
}

/** A domain name as the doctor compares names: lower case, without the final dot of an absolute name. */
export function dnsName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** The records of an answer, none for NXDOMAIN or NODATA. */
export function recordsOf<T>(answer: DnsAnswer<T>): readonly T[] {
  return answer.status === 'found' ? answer.records : [];
}

/**
 * `dns` asking each name and type once: a run reads the same records in several places (the
 * domain's TXT for SPF, its lint and the record check; `_dmarc.<domain>` for the policy and the
 * malformed-record check; each include: twice), and node's resolver keeps no cache. One answer per
 * name also keeps a run's checks from disagreeing about a record that changed (or timed out) mid-run.
 */
export function askingOnce(dns: DnsPort): DnsPort {
  const answers = new Map<string, Promise<DnsAnswer<unknown>>>();
  const once = <T>(type: string, name: string, ask: () => Promise<DnsAnswer<T>>): Promise<DnsAnswer<T>> => {
    const key = `${type} ${name}`;
    let answer = answers.get(key);
    if (answer === undefined) {
      answer = ask();
      answers.set(key, answer);
    }
    return answer as Promise<DnsAnswer<T>>;
  };
  return {
    description: dns.description,
    ...(dns.namesUnder && { namesUnder: dns.namesUnder.bind(dns) }),
    resolveTxt: (name) => once('TXT', name, () => dns.resolveTxt(name)),
    resolveCname: (name) => once('CNAME', name, () => dns.resolveCname(name)),
    resolveMx: (name) => once('MX', name, () => dns.resolveMx(name)),
  };
}
