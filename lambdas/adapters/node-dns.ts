import { Resolver } from 'node:dns/promises';
import { type DnsAnswer, DnsLookupError, type DnsPort, type MxRecord } from '../domain/doctor/dns.ts';

/** What the doctor needs of node's resolver; a fake in the tests. */
export interface TxtCnameMxResolver {
  resolveTxt(name: string): Promise<string[][]>;
  resolveCname(name: string): Promise<string[]>;
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
}

/**
 * Real DNS through node:dns (c-ares, the system's resolvers). c-ares reports NXDOMAIN as ENOTFOUND
 * and NODATA as ENODATA; every other code (ETIMEOUT, ESERVFAIL, ECONNREFUSED, ...) says nothing
 * about the records and becomes a {@link DnsLookupError}.
 */
export class NodeDns implements DnsPort {
  readonly description = 'DNS';
  readonly #resolver: TxtCnameMxResolver;

  // Two tries of 3 s: a doctor run makes a few dozen queries and should not hang on a dead resolver.
  constructor(resolver: TxtCnameMxResolver = new Resolver({ timeout: 3000, tries: 2 })) {
    this.#resolver = resolver;
  }

  resolveTxt(name: string): Promise<DnsAnswer<readonly string[]>> {
    return answer(name, () => this.#resolver.resolveTxt(name));
  }

  resolveCname(name: string): Promise<DnsAnswer<string>> {
    return answer(name, () => this.#resolver.resolveCname(name));
  }

  async resolveMx(name: string): Promise<DnsAnswer<MxRecord>> {
    const result = await answer(name, () => this.#resolver.resolveMx(name));
    return result.status === 'found'
      ? {
          status: 'found',
          records: result.records.map((r) => ({ ...r, exchange: r.exchange.toLowerCase() })),
        }
      : result;
  }
}

async function answer<T>(name: string, lookup: () => Promise<T[]>): Promise<DnsAnswer<T>> {
  try {
    const records = await lookup();
    return records.length === 0 ? { status: 'nodata' } : { status: 'found', records };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND') return { status: 'nxdomain' };
    if (code === 'ENODATA') return { status: 'nodata' };
    throw new DnsLookupError(name, code ?? 'EUNKNOWN', { cause: error });
  }
}
