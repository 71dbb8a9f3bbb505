/**
 * Every case of the shared address corpus (addresses.json: python-email-validator, isemail,
 * validator.js and parser-differential payloads) through `parseMailbox`. Each source's verdict is
 * the expectation unless our policy (DESIGN §2: 7-bit dot-atom local part, IDN domain to
 * punycode, no quoted local parts, comments, groups, source routes or IP literals) deliberately
 * differs: those cases are listed in EXPECTED_DIFFERENCES with the reason. Cases where we think
 * Baton is wrong would be in KNOWN_BUGS and run as `it.fails` until fixed.
 */
import { describe, expect, it } from 'vitest';
import { domainOf, parseAddrSpec, parseMailbox } from '../../../lambdas/domain/address.ts';
import { fixtureJson } from '../../support/fixtures.ts';

type Verdict = 'accept' | 'reject';

interface Case {
  readonly id: string;
  readonly input: string;
  /** What the upstream source expects under the options the group names. */
  readonly source: Verdict;
  /** python-email-validator's ASCII form, when the source gives one. */
  readonly asciiEmail?: string;
  readonly displayName?: string;
  /** The domain an RFC 5322 parser routes to (parser-differential payloads). */
  readonly rfcDomain?: string;
}

interface Corpus {
  readonly readme: string;
  readonly groups: ReadonlyArray<{
    readonly id: string;
    readonly cases?: ReadonlyArray<Record<string, unknown>>;
    readonly valid?: readonly string[];
    readonly invalid?: readonly string[];
  }>;
}

const corpus = fixtureJson<Corpus>('addresses.json');

const QUOTED_LOCAL = 'quoted local parts are refused: parsers disagree about where they route (DESIGN §2)';
const UTF8_LOCAL = 'SES accepts only 7-bit ASCII local parts (no SMTPUTF8)';
const NAME_FORM = 'the API accepts "Name <local@domain>" (DESIGN §2); pyev forbids display names by default';
const SYNTAX_ONLY =
  'we check hostname syntax, not TLD lists, IDNA A-label validity or RFC 5891 hyphen rules: the same normalised domain drives the sender check and SES, so it cannot misroute; a bad domain bounces and is suppressed';
const RESERVED =
  'special-use domains are syntactically valid; SES bounces them and the address is suppressed (not filtered up front)';
const IDNA_MAPPING =
  'UTS #46 maps full-width letters and symbols to their ASCII/punycode form; the mapped domain is what both the policy check and SES see';
const DOTLESS = 'single-label (dotless) domains are refused: ICANN prohibits them for mail';
const TRIMMED = 'addresses are trimmed of blanks (DESIGN §2: normalised, trimmed)';
const IP_DOMAIN = 'IP addresses and IP literals are refused as domains (DESIGN §2)';
const LOCAL_64 = 'the 64-octet local-part limit of RFC 5321 is enforced (SES enforces it too)';

/** Where Baton's verdict deliberately differs from the source's, and why. */
const EXPECTED_DIFFERENCES: Readonly<Record<string, { readonly ours: Verdict; readonly why: string }>> = {
  'pyev_valid[5]': { ours: 'reject', why: QUOTED_LOCAL },
  'pyev_valid[6]': { ours: 'reject', why: QUOTED_LOCAL },
  'pyev_valid[7]': { ours: 'reject', why: QUOTED_LOCAL },
  'pyev_valid[8]': { ours: 'reject', why: QUOTED_LOCAL },
  'pyev_valid[11]': { ours: 'reject', why: `${QUOTED_LOCAL}; escaped quotes in names are refused too` },
  'pyev_invalid_syntax[58]': { ours: 'accept', why: SYNTAX_ONLY },
  'pyev_invalid_syntax[59]': { ours: 'accept', why: SYNTAX_ONLY },
  'pyev_invalid_syntax[60]': { ours: 'accept', why: SYNTAX_ONLY },
  'pyev_invalid_syntax[61]': { ours: 'accept', why: `${SYNTAX_ONLY}; ${IDNA_MAPPING}` },
  'pyev_invalid_syntax[69]': { ours: 'accept', why: NAME_FORM },
  'pyev_invalid_syntax[74]': { ours: 'accept', why: NAME_FORM },
  'pyev_invalid_syntax[75]': { ours: 'accept', why: NAME_FORM },
  'pyev_invalid_syntax[76]': { ours: 'accept', why: NAME_FORM },
  'pyev_invalid_syntax[77]': {
    ours: 'accept',
    why: `${NAME_FORM}; an unquoted "." (obs-phrase) is re-quoted on output`,
  },
  'pyev_invalid_syntax[78]': { ours: 'accept', why: NAME_FORM },
  'pyev_reserved_domains[0]': { ours: 'accept', why: RESERVED },
  'pyev_reserved_domains[1]': { ours: 'accept', why: RESERVED },
  'pyev_reserved_domains[2]': { ours: 'accept', why: RESERVED },
  'pyev_reserved_domains[3]': { ours: 'accept', why: RESERVED },
  'pyev_reserved_domains[4]': { ours: 'accept', why: RESERVED },
  'pyev_reserved_domains[5]': { ours: 'accept', why: RESERVED },
  'isemail_tests_v3.05#5': { ours: 'reject', why: DOTLESS },
  'isemail_tests_v3.05#157': { ours: 'accept', why: TRIMMED },
  'isemail_tests_v3.05#158': { ours: 'accept', why: TRIMMED },
  'validatorjs_isEmail_line12:valid[4]': { ours: 'reject', why: UTF8_LOCAL },
  'validatorjs_isEmail_line12:valid[9]': { ours: 'reject', why: QUOTED_LOCAL },
  'validatorjs_isEmail_line12:valid[10]': { ours: 'reject', why: QUOTED_LOCAL },
  'validatorjs_isEmail_line12:valid[11]': { ours: 'reject', why: QUOTED_LOCAL },
  'validatorjs_isEmail_line12:invalid[5]': { ours: 'accept', why: IDNA_MAPPING },
  'validatorjs_isEmail_line12:invalid[7]': { ours: 'accept', why: SYNTAX_ONLY },
  'validatorjs_isEmail_line12:invalid[34]': { ours: 'accept', why: IDNA_MAPPING },
  'validatorjs_isEmail_line111:valid[8]': { ours: 'reject', why: QUOTED_LOCAL },
  'validatorjs_isEmail_line111:valid[9]': { ours: 'reject', why: QUOTED_LOCAL },
  'validatorjs_isEmail_line111:valid[10]': { ours: 'reject', why: QUOTED_LOCAL },
  'validatorjs_isEmail_line111:invalid[5]': { ours: 'accept', why: IDNA_MAPPING },
  'validatorjs_isEmail_line111:invalid[7]': { ours: 'accept', why: SYNTAX_ONLY },
  'validatorjs_isEmail_line252:valid[0]': { ours: 'reject', why: IP_DOMAIN },
  'validatorjs_isEmail_line252:valid[1]': { ours: 'reject', why: IP_DOMAIN },
  'validatorjs_isEmail_line294:valid[0]': { ours: 'reject', why: LOCAL_64 },
  'validatorjs_isEmail_line303:valid[0]': { ours: 'reject', why: LOCAL_64 },
};

/** Cases where Baton is known to be wrong run as `it.fails` until fixed. None left. */
const KNOWN_BUGS = new Set<string>();

function sourceVerdictOfIsemail(c: Record<string, unknown>): Verdict {
  const strict = c.strict_policy_expect;
  if (typeof strict === 'string') return strict.startsWith('accept') ? 'accept' : 'reject';
  // Not covered by the strict mapping: DNS warnings are valid syntax, anything else is not.
  return c.isemail_category === 'ISEMAIL_VALID_CATEGORY' || c.isemail_category === 'ISEMAIL_DNSWARN'
    ? 'accept'
    : 'reject';
}

function flatten(): Case[] {
  const out: Case[] = [];
  for (const group of corpus.groups) {
    group.cases?.forEach((c, index) => {
      const id = typeof c.id === 'number' ? `${group.id}#${c.id}` : `${group.id}[${index}]`;
      const source: Verdict =
        group.id === 'pyev_valid'
          ? 'accept'
          : group.id === 'isemail_tests_v3.05'
            ? sourceVerdictOfIsemail(c)
            : 'reject';
      const expected = c.expected as { ascii_email?: string; display_name?: string } | undefined;
      if (typeof c.input === 'string') {
        out.push({
          id,
          input: c.input,
          source,
          ...(expected?.ascii_email ? { asciiEmail: expected.ascii_email } : {}),
          ...(expected?.display_name ? { displayName: expected.display_name } : {}),
          ...(typeof c.rfc_domain === 'string' ? { rfcDomain: c.rfc_domain } : {}),
        });
      } else {
        out.push({ id: `${id}:local`, input: String(c.input_local_form), source });
        out.push({ id: `${id}:domain`, input: String(c.input_domain_form), source });
      }
    });
    group.valid?.forEach((input, i) => {
      out.push({ id: `${group.id}:valid[${i}]`, input, source: 'accept' });
    });
    group.invalid?.forEach((input, i) => {
      out.push({ id: `${group.id}:invalid[${i}]`, input, source: 'reject' });
    });
  }
  return out;
}

const cases = flatten();

function ourVerdict(c: Case): Verdict {
  return EXPECTED_DIFFERENCES[c.id]?.ours ?? c.source;
}

function title(c: Case): string {
  const shown = JSON.stringify(c.input);
  return `${c.id}: ${shown.length > 70 ? `${shown.slice(0, 67)}..."` : shown}`;
}

describe('addresses.json corpus through parseMailbox', () => {
  it('holds the 17 groups and 403 cases described in its sources', () => {
    // Prepare / Act
    const groups = corpus.groups.length;

    // Assess
    expect(groups).toBe(17);
    // 403 cases, the 11 unsafe-character cases each tried as local part and as domain.
    expect(cases).toHaveLength(403 + 11);
  });

  it('names only existing cases in its lists of differences and bugs', () => {
    // Prepare
    const ids = new Set(cases.map((c) => c.id));

    // Act
    const unknown = [...Object.keys(EXPECTED_DIFFERENCES), ...KNOWN_BUGS].filter((id) => !ids.has(id));

    // Assess
    expect(unknown).toEqual([]);
  });

  it('lists a difference only where it really departs from the source', () => {
    // Prepare / Act
    const noDifference = cases.filter((c) => EXPECTED_DIFFERENCES[c.id]?.ours === c.source).map((c) => c.id);

    // Assess
    expect(noDifference).toEqual([]);
  });

  for (const c of cases) {
    const verdict = ourVerdict(c);
    const run = KNOWN_BUGS.has(c.id) ? it.fails : it;
    run(`${verdict}s ${title(c)}`, () => {
      // Prepare
      const input = c.input;

      // Act
      const result = parseMailbox(input);

      // Assess
      expect(result.ok ? 'accept' : 'reject').toBe(verdict);
      if (result.ok && c.asciiEmail !== undefined) expect(result.value.address).toBe(c.asciiEmail);
      if (result.ok && c.displayName !== undefined) expect(result.value.name).toBe(c.displayName);
      // A bare address parses the same way on its own.
      const bare = parseAddrSpec(input);
      if (bare.ok) expect(result).toEqual({ ok: true, value: { address: bare.value } });
    });
  }

  it('routes every parser-differential payload it accepts to the domain an RFC 5322 parser would', () => {
    // Prepare
    const payloads = cases.filter((c) => c.rfcDomain !== undefined);

    // Act
    const misrouted = payloads.flatMap((c) => {
      const result = parseMailbox(c.input);
      return result.ok && domainOf(result.value.address) !== c.rfcDomain ? [c.id] : [];
    });

    // Assess
    expect(payloads).toHaveLength(8);
    expect(misrouted).toEqual([]);
  });

  it('answers the many-"@" ReDoS probe quickly', () => {
    // Prepare
    const probe = cases.find((c) => c.id === 'routing_differential_payloads[12]');
    const started = performance.now();

    // Act
    const result = parseMailbox(`${probe?.input ?? ''}${'@'.repeat(50_000)}`);

    // Assess
    expect(result).toEqual({ ok: false, message: 'must contain exactly one "@"' });
    expect(performance.now() - started).toBeLessThan(100);
  });
});
