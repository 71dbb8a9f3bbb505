import { type DnsAnswer, DnsLookupError, type DnsPort, dnsName, type MxRecord } from './dns.ts';
import type { ZoneRecord } from './zone-file.ts';

/**
 * amazonses.com's SPF record, which a zone file of the user's domain does not hold but
 * `include:amazonses.com` needs: abridged to ranges SES sends from (the real record lists more).
 * Offline only; with real DNS the published record is read.
 */
export const AMAZONSES_SPF_SNAPSHOT =
  'v=spf1 ip4:199.255.192.0/22 ip4:199.127.232.0/22 ip4:54.240.0.0/18 -all';

/** The lookup error code of a name outside the zone file (neither found nor proven absent). */
export const OUTSIDE_ZONE = 'EOUTSIDEZONE';

const SNAPSHOT: readonly ZoneRecord[] = [
  { name: 'amazonses.com', ttl: undefined, type: 'TXT', data: [AMAZONSES_SPF_SNAPSHOT] },
];

/**
 * DNS answered from a parsed zone file, as an authoritative server for it would: NXDOMAIN for a name
 * with no records at or below it, NODATA for a name that exists without that type, a CNAME followed
 * for TXT and MX. A name outside the file's domains is a lookup failure ({@link OUTSIDE_ZONE}):
 * the file cannot say whether it exists.
 */
export class ZoneDns implements DnsPort {
  readonly description: string;
  readonly #records: readonly ZoneRecord[];
  readonly #apexes: readonly string[];

  constructor(records: readonly ZoneRecord[], description: string, apexes: readonly string[]) {
    this.#records = [...records, ...SNAPSHOT];
    this.#apexes = [...apexes.map((a) => a.toLowerCase()), 'amazonses.com'];
    this.description = description;
  }

  readonly namesUnder = (suffix: string): readonly string[] => {
    const lower = suffix.toLowerCase();
    return [...new Set(this.#records.map((r) => r.name))].filter(
      (n) => n === lower || n.endsWith(`.${lower}`),
    );
  };

  async resolveTxt(name: string): Promise<DnsAnswer<readonly string[]>> {
    return this.#lookup(name, 'TXT', (r) => r.data);
  }

  async resolveCname(name: string): Promise<DnsAnswer<string>> {
    return this.#lookup(name, 'CNAME', (r) => r.data[0] ?? '', false);
  }

  async resolveMx(name: string): Promise<DnsAnswer<MxRecord>> {
    return this.#lookup(name, 'MX', (r) => ({ priority: Number(r.data[0]), exchange: r.data[1] ?? '' }));
  }

  #lookup<T>(name: string, type: string, map: (r: ZoneRecord) => T, followCname = true): DnsAnswer<T> {
    let current = dnsName(name);
    // Eight hops is as far as resolvers follow a chain before giving up on a loop.
    for (let hop = 0; hop < 8; hop++) {
      if (!this.#apexes.some((apex) => current === apex || current.endsWith(`.${apex}`))) {
        throw new DnsLookupError(current, OUTSIDE_ZONE);
      }
      const here = this.#records.filter((r) => r.name === current);
      const wanted = here.filter((r) => r.type === type);
      if (wanted.length > 0) return { status: 'found', records: wanted.map(map) };
      const alias = here.find((r) => r.type === 'CNAME');
      if (followCname && alias?.data[0] !== undefined) {
        current = alias.data[0];
        continue;
      }
      if (here.length > 0 || this.namesUnder(current).length > 0) return { status: 'nodata' };
      return { status: 'nxdomain' };
    }
    throw new DnsLookupError(name, 'ECNAMELOOP');
  }
}
