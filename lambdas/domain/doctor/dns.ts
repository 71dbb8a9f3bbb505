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

/** The records of an answer, none for NXDOMAIN or NODATA. */
export function recordsOf<T>(answer: DnsAnswer<T>): readonly T[] {
  return answer.status === 'found' ? answer.records : [];
}
