import { describe, expect, it } from 'vitest';
import type { ApiKey } from '../../lambdas/domain/keys/api-key.ts';
import {
  assertRelayNetworksFree,
  cidrsOverlap,
  overlappingNetworks,
  RelayNetworksOverlapError,
  relayKeyFor,
  sourceMayConnect,
  wideNetworks,
} from '../../lambdas/domain/keys/relay.ts';
import { issueApiKey } from '../support/fakes.ts';

const relayKey = (allowedCidrs: string[], overrides: Partial<ApiKey> = {}): ApiKey =>
  issueApiKey({ allowedCidrs, smtpWithoutAuth: true, scopes: ['send'], ...overrides }).key;

describe('cidrsOverlap', () => {
  it.each([
    ['a network and a subnet of it', ['10.0.0.0/8'], ['10.20.0.0/16']],
    ['a subnet and the network holding it (either order)', ['10.20.0.0/16'], ['10.0.0.0/8']],
    ['the same network written twice', ['192.0.2.0/24'], ['192.0.2.0/24']],
    ['a single address inside a network', ['192.0.2.0/24'], ['192.0.2.77']],
    ['a network written with host bits set', ['192.0.2.9/24'], ['192.0.2.200']],
    ['IPv4 anywhere and any IPv4 network', ['0.0.0.0/0'], ['203.0.113.0/24']],
    ['IPv6 networks, one inside the other', ['2001:db8::/32'], ['2001:db8:1:2::/64']],
    ['IPv6 anywhere and an IPv6 address', ['::/0'], ['2001:db8::1']],
    ['IPv6 anywhere and IPv4 (node matches IPv4 inside ::/0)', ['::/0'], ['10.0.0.0/8']],
    ['an IPv4-mapped IPv6 network and the IPv4 network it maps', ['::ffff:10.0.0.0/104'], ['10.1.0.0/16']],
    ['the whole mapped range and any IPv4 address', ['::ffff:0:0/96'], ['198.51.100.1']],
    ['an IPv4 network and a mapped address inside it', ['10.0.0.0/8'], ['::ffff:10.9.9.9']],
    [
      'one overlapping pair among several networks',
      ['172.16.0.0/12', '2001:db8::/48'],
      ['10.0.0.0/8', '2001:db8:0:1::/64'],
    ],
  ])('finds %s overlapping', (_, a, b) => {
    // Act & Assess
    expect(cidrsOverlap(a, b)).toBe(true);
    expect(cidrsOverlap(b, a)).toBe(true);
  });

  it.each([
    ['neighbouring IPv4 networks', ['10.0.0.0/9'], ['10.128.0.0/9']],
    ['two different single addresses', ['192.0.2.1'], ['192.0.2.2']],
    ['IPv4 anywhere and a non-mapped IPv6 network', ['0.0.0.0/0'], ['2001:db8::/32']],
    ['an IPv4 network and the IPv4-compatible (not mapped) form', ['10.0.0.0/8'], ['::10.0.0.0/104']],
    ['separate IPv6 networks', ['2001:db8:1::/48'], ['2001:db8:2::/48']],
    ['an empty list (a key with no CIDRs relays for nobody without AUTH)', [], ['0.0.0.0/0']],
    ['a CIDR node cannot read (it allows nothing, so it overlaps nothing)', ['10.0.0.0/99'], ['10.0.0.0/8']],
  ])('finds %s apart', (_, a, b) => {
    // Act & Assess
    expect(cidrsOverlap(a, b)).toBe(false);
    expect(cidrsOverlap(b, a)).toBe(false);
  });

  it('names each overlapping pair, as written', () => {
    // Act
    const pairs = overlappingNetworks(
      ['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32'],
      ['10.1.0.0/16', '2001:db8:5::/48'],
    );

    // Assess
    expect(pairs).toEqual([
      ['10.0.0.0/8', '10.1.0.0/16'],
      ['2001:db8::/32', '2001:db8:5::/48'],
    ]);
  });

  it('agrees with sourceAllowed on every address of a small range (the overlap is exact at the edges)', async () => {
    // Prepare: all /26../32 IPv4 networks inside 192.0.2.0/24 against 192.0.2.64/26
    const { sourceAllowed } = await import('../../lambdas/domain/keys/api-key.ts');
    const other = ['192.0.2.64/26'];
    for (let bits = 24; bits <= 32; bits += 1) {
      for (let start = 0; start < 256; start += 2 ** (32 - bits)) {
        const mine = [`192.0.2.${start}/${bits}`];
        const size = 2 ** (32 - bits);
        let shared = false;
        for (let host = start; host < start + size; host += 1) {
          if (sourceAllowed(`192.0.2.${host}`, other) && sourceAllowed(`192.0.2.${host}`, mine))
            shared = true;
        }

        // Act & Assess
        expect(cidrsOverlap(mine, other), mine[0]).toBe(shared);
      }
    }
  });
});

describe('relayKeyFor', () => {
  it('finds the no-AUTH key whose networks hold the source address', () => {
    // Prepare
    const office = relayKey(['10.1.0.0/16']);
    const lab = relayKey(['10.2.0.0/16']);

    // Act & Assess
    expect(relayKeyFor('10.2.3.4', [office, lab])?.keyId).toBe(lab.keyId);
    expect(relayKeyFor('10.3.0.1', [office, lab])).toBeUndefined();
  });

  it('reads an IPv4-mapped IPv6 source (a dual-stack socket) as its IPv4 address', () => {
    // Prepare
    const office = relayKey(['10.1.0.0/16']);

    // Act & Assess
    expect(relayKeyFor('::ffff:10.1.2.3', [office])?.keyId).toBe(office.keyId);
  });

  it('matches a plain IPv4 source against networks written in IPv4-mapped form', () => {
    // Prepare
    const mapped = relayKey(['::ffff:10.1.0.0/112']);

    // Act & Assess
    expect(relayKeyFor('10.1.0.9', [mapped])?.keyId).toBe(mapped.keyId);
    expect(relayKeyFor('10.2.0.9', [mapped])).toBeUndefined();
  });

  it('finds an IPv6 no-AUTH key', () => {
    // Prepare
    const v6 = relayKey(['2001:db8:42::/48']);

    // Act & Assess
    expect(relayKeyFor('2001:db8:42::25', [v6])?.keyId).toBe(v6.keyId);
    expect(relayKeyFor('2001:db8:43::25', [v6])).toBeUndefined();
  });

  it('ignores keys that need AUTH, even when their CIDRs hold the address', () => {
    // Prepare
    const authOnly = issueApiKey({ allowedCidrs: ['10.0.0.0/8'] }).key;

    // Act & Assess
    expect(relayKeyFor('10.0.0.1', [authOnly])).toBeUndefined();
  });

  it('ignores revoked keys but returns suspended ones (the caller refuses them in words)', () => {
    // Prepare
    const revoked = relayKey(['10.0.0.0/8'], { status: 'revoked' });
    const suspended = relayKey(['10.0.0.0/8'], { status: 'suspended' });

    // Act & Assess
    expect(relayKeyFor('10.0.0.1', [revoked])).toBeUndefined();
    expect(relayKeyFor('10.0.0.1', [revoked, suspended])?.keyId).toBe(suspended.keyId);
  });

  it('never relays for a no-AUTH key without CIDRs or without the send scope (written by hand)', () => {
    // Prepare
    const anywhere = relayKey([]);
    const readOnly = relayKey(['10.0.0.0/8'], { scopes: ['read'] });

    // Act & Assess
    expect(relayKeyFor('10.0.0.1', [anywhere, readOnly])).toBeUndefined();
  });

  it('relays for nobody when two no-AUTH keys hold the address (creation refuses that; a hand edit could not pick a tenant)', () => {
    // Prepare
    const a = relayKey(['10.0.0.0/8']);
    const b = relayKey(['10.1.0.0/16']);

    // Act & Assess
    expect(relayKeyFor('10.1.0.1', [a, b])).toBeUndefined();
    expect(relayKeyFor('10.2.0.1', [a, b])?.keyId).toBe(a.keyId);
  });

  it('follows a key’s new networks once the directory hands out the changed key', () => {
    // Prepare: the same key, read again after its CIDRs changed (a new object, as each read gives)
    const before = relayKey(['10.1.0.0/16']);
    expect(relayKeyFor('10.1.0.1', [before])?.keyId).toBe(before.keyId);
    const after: ApiKey = { ...before, allowedCidrs: ['10.2.0.0/16'] };

    // Act & Assess
    expect(relayKeyFor('10.1.0.1', [after])).toBeUndefined();
    expect(relayKeyFor('10.2.0.1', [after])?.keyId).toBe(before.keyId);
  });

  it('finds nothing for a source that is not an IP address', () => {
    // Act & Assess
    expect(relayKeyFor('not-an-ip', [relayKey(['0.0.0.0/0'])])).toBeUndefined();
  });
});

describe('sourceMayConnect', () => {
  it('lets any address connect when a sending key has no CIDRs', () => {
    // Act & Assess
    expect(sourceMayConnect('198.51.100.7', [issueApiKey({ allowedCidrs: [] }).key])).toBe(true);
  });

  it('lets an address connect only when some sending key allows it', () => {
    // Prepare
    const keys = [issueApiKey({ allowedCidrs: ['10.0.0.0/8'] }).key, relayKey(['2001:db8::/32'])];

    // Act & Assess
    expect(sourceMayConnect('10.9.9.9', keys)).toBe(true);
    expect(sourceMayConnect('::ffff:10.9.9.9', keys)).toBe(true);
    expect(sourceMayConnect('2001:db8::1', keys)).toBe(true);
    expect(sourceMayConnect('192.0.2.1', keys)).toBe(false);
  });

  it('does not count revoked keys or keys without the send scope', () => {
    // Prepare
    const keys = [
      issueApiKey({ allowedCidrs: [], status: 'revoked' }).key,
      issueApiKey({ allowedCidrs: [], scopes: ['read', 'suppressions'] }).key,
    ];

    // Act & Assess
    expect(sourceMayConnect('192.0.2.1', keys)).toBe(false);
  });

  it('counts a suspended key (the connection is then refused for the key, with words)', () => {
    // Act & Assess
    expect(sourceMayConnect('192.0.2.1', [issueApiKey({ allowedCidrs: [], status: 'suspended' }).key])).toBe(
      true,
    );
  });

  it('lets nobody connect when there are no keys', () => {
    // Act & Assess
    expect(sourceMayConnect('127.0.0.1', [])).toBe(false);
  });
});

describe('relayKeyFor and sourceMayConnect with items written by hand', () => {
  it('skip an item without scopes or CIDRs instead of failing every connection', () => {
    // Prepare: the directory hands every item of the table to every connection
    const malformed = {
      keyId: 'handwritten1',
      tenant: 't',
      status: 'active',
      smtpWithoutAuth: true,
    } as unknown as ApiKey;
    const good = relayKey(['10.0.0.0/8']);

    // Act & Assess
    expect(relayKeyFor('10.0.0.1', [malformed, good])?.keyId).toBe(good.keyId);
    expect(sourceMayConnect('192.0.2.1', [malformed])).toBe(false);
    expect(() => assertRelayNetworksFree(relayKey(['10.0.0.0/8']), [malformed])).not.toThrow();
  });
});

describe('assertRelayNetworksFree', () => {
  it('refuses a no-AUTH key whose networks overlap another non-revoked no-AUTH key, naming it and the networks', () => {
    // Prepare
    const existing = relayKey(['10.0.0.0/8', '2001:db8::/32'], { status: 'suspended', tenant: 'shop' });
    const candidate = relayKey(['192.0.2.0/24', '10.20.0.0/16']);

    // Act
    let error: unknown;
    try {
      assertRelayNetworksFree(candidate, [existing]);
    } catch (caught) {
      error = caught;
    }

    // Assess
    expect(error).toBeInstanceOf(RelayNetworksOverlapError);
    const overlap = error as RelayNetworksOverlapError;
    expect(overlap.conflicts).toEqual([
      { keyId: existing.keyId, tenant: 'shop', networks: [['10.20.0.0/16', '10.0.0.0/8']] },
    ]);
    expect(overlap.message).toBe(
      `its SMTP networks without AUTH overlap those of key ${existing.keyId} (tenant shop): 10.20.0.0/16 with 10.0.0.0/8. ` +
        'A connection must map to at most one key: narrow --cidrs, or revoke the other key first.',
    );
  });

  it('names every key it overlaps', () => {
    // Prepare
    const a = relayKey(['10.1.0.0/16']);
    const b = relayKey(['10.2.0.0/16']);

    // Act
    let error: RelayNetworksOverlapError | undefined;
    try {
      assertRelayNetworksFree(relayKey(['10.0.0.0/8']), [a, b]);
    } catch (caught) {
      error = caught as RelayNetworksOverlapError;
    }

    // Assess
    expect(error?.conflicts.map((c) => c.keyId)).toEqual([a.keyId, b.keyId]);
    expect(error?.message).toContain(a.keyId);
    expect(error?.message).toContain(b.keyId);
  });

  it('allows overlap with revoked keys, keys that need AUTH, and itself', () => {
    // Prepare
    const candidate = relayKey(['10.0.0.0/8']);
    const others = [
      relayKey(['10.0.0.0/8'], { status: 'revoked' }),
      issueApiKey({ allowedCidrs: ['10.0.0.0/8'] }).key,
      candidate,
    ];

    // Act & Assess
    expect(() => assertRelayNetworksFree(candidate, others)).not.toThrow();
  });

  it('does not check a key that needs AUTH (its CIDRs only restrict it)', () => {
    // Prepare
    const candidate = issueApiKey({ allowedCidrs: ['10.0.0.0/8'] }).key;

    // Act & Assess
    expect(() => assertRelayNetworksFree(candidate, [relayKey(['10.0.0.0/8'])])).not.toThrow();
  });

  it('refuses IPv4 against an overlapping IPv4-mapped IPv6 network and /0 against anything of its family', () => {
    // Act & Assess
    expect(() =>
      assertRelayNetworksFree(relayKey(['10.1.2.3']), [relayKey(['::ffff:10.0.0.0/104'])]),
    ).toThrow(RelayNetworksOverlapError);
    expect(() => assertRelayNetworksFree(relayKey(['0.0.0.0/0']), [relayKey(['203.0.113.9'])])).toThrow(
      RelayNetworksOverlapError,
    );
    expect(() => assertRelayNetworksFree(relayKey(['::/0']), [relayKey(['2001:db8::1'])])).toThrow(
      RelayNetworksOverlapError,
    );
  });
});

describe('wideNetworks', () => {
  it('picks the networks wider than an IPv4 /8 or an IPv6 /32, IPv4 in IPv6 form judged as IPv4', () => {
    // Act
    const wide = wideNetworks([
      '0.0.0.0/0',
      '10.0.0.0/8',
      '11.0.0.0/7',
      '::/0',
      '2001:db8::/32',
      '2000::/3',
      '::ffff:0:0/96',
      '::ffff:10.0.0.0/104',
      '::ffff:8.0.0.0/101',
      '::/80',
      '192.0.2.1',
    ]);

    // Assess
    expect(wide).toEqual([
      '0.0.0.0/0',
      '11.0.0.0/7',
      '::/0',
      '2000::/3',
      '::ffff:0:0/96',
      '::ffff:8.0.0.0/101',
      '::/80',
    ]);
  });
});
