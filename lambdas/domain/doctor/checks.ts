/**
 * The domain doctor's checks: what decides whether mail Baton sends from a domain through SES is
 * trusted, each with what to publish to fix it. Pure over a DNS port and, when a stack is given,
 * what SES says about the identity.
 */
import { DEFAULT_MAIL_FROM_SUBDOMAIN } from '../../shared/names.ts';
import { askingOnce, type DnsAnswer, DnsLookupError, type DnsPort, dnsName, recordsOf } from './dns.ts';
import { evaluateSpf, SES_SENDING_ADDRESS, SPF_LOOKUP_LIMIT, type SpfEvaluation } from './spf.ts';

export const CHECK_IDS = [
  'ses_identity',
  'dkim_cnames',
  'mail_from_mx',
  'mail_from_spf',
  'spf_record',
  'dmarc_record',
  'dmarc_alignment',
  'dmarc_rua',
  'mta_sts',
  'tls_rpt',
  'bimi',
  'bulk_sender',
] as const;

export type CheckId = (typeof CHECK_IDS)[number];
export const CHECK_STATUSES = ['pass', 'warn', 'fail'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export interface CheckResult {
  readonly id: CheckId;
  readonly status: CheckStatus;
  readonly detail: string;
  /** The record(s) to publish or the step to take, one per line; "" when nothing is to be done. */
  readonly fix: string;
}

/** What SES says about the identity (GetEmailIdentity). */
export interface SesIdentityFacts {
  /** The identity's domain: the From domain or a parent of it. */
  readonly identity: string;
  readonly verifiedForSending: boolean;
  /** DkimAttributes.Status: SUCCESS, PENDING, FAILED, TEMPORARY_FAILURE, NOT_STARTED. */
  readonly dkimStatus: string;
  readonly dkimSigningEnabled: boolean;
  /** Easy DKIM's three tokens (DkimAttributes.Tokens). */
  readonly dkimTokens: readonly string[];
  /** The custom MAIL FROM domain, undefined when the identity has none. */
  readonly mailFromDomain: string | undefined;
}

export type SesView =
  /** Not asked: no stack given. */
  | { readonly kind: 'none' }
  /** Asked, and it could not say (not an identity of the stack, SES refused): the reason. */
  | { readonly kind: 'unavailable'; readonly reason: string }
  | { readonly kind: 'found'; readonly facts: SesIdentityFacts };

export interface DoctorInput {
  /** The From domain. */
  readonly domain: string;
  readonly ses: SesView;
  /** The AWS region SES sends from, and where that was learnt ("--region", "stack", "AWS_REGION"). */
  readonly region: { readonly name: string; readonly source: string } | undefined;
  /**
   * The MAIL FROM domain when SES does not say: Baton's `bounce.<domain>` unless told otherwise.
   * @default `bounce.<identity>`
   */
  readonly mailFromDomain?: string;
}

/** Easy DKIM publishes three keys (SES Developer Guide, "Easy DKIM"). */
export const EASY_DKIM_KEYS = 3;

/** The DMARC tags that matter here, from the record that applies to the domain. */
export interface DmarcPolicy {
  readonly record: string;
  /** Where it was found: `_dmarc.<domain>` or a parent's. */
  readonly at: string;
  readonly tags: ReadonlyMap<string, string>;
  /** The policy that applies to the domain (`sp` when found at a parent and given). */
  readonly policy: string;
  readonly adkim: 'r' | 's';
  readonly aspf: 'r' | 's';
}

type Lookup<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

interface Facts {
  readonly input: DoctorInput;
  readonly domain: string;
  readonly identity: string;
  readonly mailFrom: string | undefined;
  readonly mailFromSource: string;
  readonly dns: DnsPort;
  readonly mailFromMx: Lookup<DnsAnswer<{ exchange: string; priority: number }>>;
  readonly mailFromSpf: Lookup<SpfEvaluation> | undefined;
  readonly domainSpf: Lookup<SpfEvaluation>;
  readonly domainTxt: Lookup<DnsAnswer<readonly string[]>>;
  readonly mailFromTxt: Lookup<DnsAnswer<readonly string[]>> | undefined;
  readonly dmarc: Lookup<{ readonly records: readonly string[]; readonly at: string } | undefined>;
  /** TXT at `_dmarc.<domain>` as published, to tell a malformed record from none. */
  readonly dmarcTxt: Lookup<DnsAnswer<readonly string[]>>;
  readonly dkim: Lookup<DkimFindings>;
  readonly mtaSts: Lookup<DnsAnswer<readonly string[]>>;
  readonly tlsRpt: Lookup<DnsAnswer<readonly string[]>>;
  readonly bimi: Lookup<DnsAnswer<readonly string[]>>;
}

interface DkimFindings {
  /** How the CNAMEs were found: SES's tokens, or the zone's names under _domainkey. */
  readonly source: 'ses' | 'zone' | 'unknown';
  readonly good: readonly string[];
  /** Wrong or missing, each with what it should be. */
  readonly bad: readonly { readonly name: string; readonly found: string; readonly expected: string }[];
  readonly extra: readonly string[];
}

/** Runs every check, in {@link CHECK_IDS} order. */
export async function runChecks(input: DoctorInput, dns: DnsPort): Promise<CheckResult[]> {
  const facts = await gather(input, askingOnce(dns));
  const spfAligned = spfAlignment(facts);
  const dkimAligned = dkimAlignment(facts);
  return [
    sesIdentity(facts),
    dkimCnames(facts),
    mailFromMx(facts),
    mailFromSpf(facts),
    spfRecord(facts),
    dmarcRecord(facts),
    dmarcAlignment(facts, spfAligned, dkimAligned),
    dmarcRua(facts),
    mtaSts(facts),
    tlsRpt(facts),
    bimi(facts),
    bulkSender(facts, spfAligned, dkimAligned),
  ];
}

async function lookup<T>(run: () => Promise<T>): Promise<Lookup<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    if (error instanceof DnsLookupError) return { ok: false, error: lookupProblem(error) };
    throw error;
  }
}

function lookupProblem(error: DnsLookupError): string {
  return error.code === 'EOUTSIDEZONE'
    ? `${error.domain} is not in the zone file`
    : `the DNS lookup of ${error.domain} failed (${error.code})`;
}

async function gather(input: DoctorInput, dns: DnsPort): Promise<Facts> {
  const domain = normalize(input.domain);
  const identity = input.ses.kind === 'found' ? normalize(input.ses.facts.identity) : domain;
  let mailFrom: string | undefined;
  let mailFromSource: string;
  if (input.ses.kind === 'found') {
    mailFrom =
      input.ses.facts.mailFromDomain === undefined ? undefined : normalize(input.ses.facts.mailFromDomain);
    mailFromSource = 'SES';
  } else if (input.mailFromDomain !== undefined) {
    mailFrom = normalize(input.mailFromDomain);
    mailFromSource = '--mail-from';
  } else {
    mailFrom = `${DEFAULT_MAIL_FROM_SUBDOMAIN}.${identity}`;
    mailFromSource = "Baton's default";
  }
  const [
    mailFromMx,
    mailFromSpf,
    domainSpf,
    domainTxt,
    mailFromTxt,
    dmarc,
    dkim,
    mtaSts,
    tlsRpt,
    bimiTxt,
    dmarcTxt,
  ] = await Promise.all([
    lookup(() =>
      mailFrom === undefined ? Promise.resolve({ status: 'nxdomain' as const }) : dns.resolveMx(mailFrom),
    ),
    mailFrom === undefined ? undefined : lookup(() => evaluateSpf(dns, mailFrom)),
    lookup(() => evaluateSpf(dns, domain)),
    lookup(() => dns.resolveTxt(domain)),
    mailFrom === undefined ? undefined : lookup(() => dns.resolveTxt(mailFrom)),
    lookup(() => findDmarc(dns, domain)),
    lookup(() => findDkim(dns, input.ses, identity)),
    lookup(() => dns.resolveTxt(`_mta-sts.${domain}`)),
    lookup(() => dns.resolveTxt(`_smtp._tls.${domain}`)),
    lookup(() => dns.resolveTxt(`default._bimi.${domain}`)),
    lookup(() => dns.resolveTxt(`_dmarc.${domain}`)),
  ]);
  return {
    input,
    domain,
    identity,
    mailFrom,
    mailFromSource,
    dns,
    mailFromMx,
    mailFromSpf,
    domainSpf,
    domainTxt,
    mailFromTxt,
    dmarc,
    dkim,
    mtaSts,
    tlsRpt,
    bimi: bimiTxt,
    dmarcTxt,
  };
}

function normalize(name: string): string {
  return dnsName(name.trim());
}

const joined = (strings: readonly string[]): string => strings.join('');

/** TXT records (joined) of an answer that start with `prefix` (case-insensitive). */
function txtStartingWith(answer: DnsAnswer<readonly string[]>, prefix: RegExp): string[] {
  return recordsOf(answer)
    .map(joined)
    .filter((record) => prefix.test(record));
}

/**
 * DMARC policy discovery: `_dmarc.<domain>`, then each parent up to two labels, the tree walk of
 * DMARCbis (RFC 9989), which replaces the Public Suffix List of RFC 7489 and finds the
 * organizational domain's record for a subdomain.
 */
async function findDmarc(
  dns: DnsPort,
  domain: string,
): Promise<{ records: string[]; at: string } | undefined> {
  const labels = domain.split('.');
  for (let i = 0; i <= labels.length - 2 && i < 8; i++) {
    const at = `_dmarc.${labels.slice(i).join('.')}`;
    const records = txtStartingWith(await dns.resolveTxt(at), /^v\s*=\s*DMARC1\s*(;|$)/i);
    if (records.length > 0) return { records, at };
  }
  return undefined;
}

async function findDkim(dns: DnsPort, ses: SesView, identity: string): Promise<DkimFindings> {
  const expectedFor = (token: string): string => `${token}.dkim.amazonses.com`;
  if (ses.kind === 'found' && ses.facts.dkimTokens.length > 0) {
    const good: string[] = [];
    const bad: { name: string; found: string; expected: string }[] = [];
    for (const token of ses.facts.dkimTokens) {
      const name = `${token}._domainkey.${identity}`;
      const answer = await dns.resolveCname(name);
      const found = recordsOf(answer)[0];
      const expected = expectedFor(token);
      if (found !== undefined && normalize(found) === expected) good.push(name);
      else bad.push({ name, found: found === undefined ? 'nothing' : normalize(found), expected });
    }
    return { source: 'ses', good, bad, extra: [] };
  }
  if (dns.namesUnder === undefined) return { source: 'unknown', good: [], bad: [], extra: [] };
  const suffix = `._domainkey.${identity}`;
  const good: string[] = [];
  const bad: { name: string; found: string; expected: string }[] = [];
  for (const name of dns.namesUnder(`_domainkey.${identity}`)) {
    if (!name.endsWith(suffix)) continue;
    const token = name.slice(0, -suffix.length);
    // Selectors with a key of their own (TXT), such as local mode's `baton`, are not SES's.
    const found = recordsOf(await dns.resolveCname(name))[0];
    if (found === undefined || token.includes('.')) continue;
    const target = normalize(found);
    if (target === expectedFor(token)) good.push(name);
    // Meant for SES but wrong (a typo, the origin appended for want of a final dot, another token);
    // other providers' selectors (dkim.mcsv.net, *.sendgrid.net) are none of the doctor's business.
    else if (target.includes('amazon') || target.startsWith(`${token}.dkim.`)) {
      bad.push({ name, found: target, expected: expectedFor(token) });
    }
  }
  return { source: 'zone', good, bad, extra: good.length > EASY_DKIM_KEYS ? good.slice(EASY_DKIM_KEYS) : [] };
}

/**
 * In a zone file, a relative owner written as if absolute but without its final dot
 * (`_dmarc.example.com` under `$ORIGIN example.com.`) lands at `_dmarc.example.com.example.com`:
 * said where the record was looked for and is missing.
 */
function doubledOrigin(f: Facts, name: string, zoneOf = f.domain): string {
  const doubled = `${name}.${zoneOf}`;
  const names = f.dns.namesUnder?.(doubled) ?? [];
  return names.length === 0
    ? ''
    : ` (the zone has ${names.slice(0, 3).join(', ')}: an owner written without its final dot, so the origin was appended; end it with "." or write it relative)`;
}

function check(id: CheckId, status: CheckStatus, detail: string, fix = ''): CheckResult {
  return { id, status, detail, fix };
}

const notChecked = (id: CheckId, error: string): CheckResult =>
  check(
    id,
    'warn',
    `not checked: ${error}`,
    'Run the doctor again once the lookup answers (or check the name in the zone).',
  );

// ---------------------------------------------------------------------------------------------
// SES identity and DKIM

function sesIdentity(f: Facts): CheckResult {
  const { ses } = f.input;
  if (ses.kind === 'none') {
    return check(
      'ses_identity',
      'warn',
      'not checked: no stack (pass --stack <name> to read the identity, its verification and DKIM status from SES)',
      `npm run doctor -- ${f.domain} --stack <stack name>`,
    );
  }
  if (ses.kind === 'unavailable') {
    return check(
      'ses_identity',
      'fail',
      ses.reason,
      'Deploy Baton with this domain in -c domains=..., or name the stack that sends for it.',
    );
  }
  const facts = ses.facts;
  const records = facts.dkimTokens
    .map((t) => `CNAME ${t}._domainkey.${facts.identity} ${t}.dkim.amazonses.com`)
    .join('\n');
  const state = `identity ${facts.identity}: verified for sending ${facts.verifiedForSending ? 'yes' : 'no'}, DKIM ${facts.dkimStatus}, signing ${facts.dkimSigningEnabled ? 'on' : 'off'}`;
  if (facts.verifiedForSending && facts.dkimStatus === 'SUCCESS' && facts.dkimSigningEnabled) {
    return check('ses_identity', 'pass', state);
  }
  if (facts.dkimStatus === 'PENDING' && facts.dkimSigningEnabled) {
    return check(
      'ses_identity',
      'warn',
      `${state}: SES keeps looking for the DKIM CNAMEs for up to 72 hours after the identity is created`,
      records,
    );
  }
  if (!facts.dkimSigningEnabled) {
    return check(
      'ses_identity',
      'fail',
      `${state}: mail goes out without Easy DKIM, so DMARC can only pass through SPF`,
      `aws sesv2 put-email-identity-dkim-attributes --email-identity ${facts.identity} --signing-enabled`,
    );
  }
  return check(
    'ses_identity',
    'fail',
    `${state}: SES does not send as this identity until DKIM verifies (publish the three CNAMEs; after FAILED, SES retries once they resolve)`,
    records,
  );
}

function dkimCnames(f: Facts): CheckResult {
  if (!f.dkim.ok) return notChecked('dkim_cnames', f.dkim.error);
  const { source, good, bad, extra } = f.dkim.value;
  const correct = (b: { name: string; expected: string }) => `CNAME ${b.name} ${b.expected}`;
  if (source === 'unknown') {
    return check(
      'dkim_cnames',
      'warn',
      "not checked: the three DKIM CNAMEs are named after SES's tokens, which DNS cannot list (pass --stack to read them from SES, or --zone)",
      `npm run doctor -- ${f.domain} --stack <stack name>`,
    );
  }
  const from = source === 'ses' ? "SES's tokens" : 'the zone';
  if (bad.length > 0) {
    const wrong = bad.map((b) => `${b.name} → ${b.found} (expected ${b.expected})`).join('; ');
    return check(
      'dkim_cnames',
      'fail',
      `${good.length} of ${EASY_DKIM_KEYS} DKIM CNAMEs right (from ${from}); wrong or missing: ${wrong}`,
      bad.map(correct).join('\n'),
    );
  }
  if (good.length < EASY_DKIM_KEYS) {
    return check(
      'dkim_cnames',
      'fail',
      `${good.length} of the ${EASY_DKIM_KEYS} Easy DKIM CNAMEs found under _domainkey.${f.identity} (from ${from}); SES signs only once all three resolve${doubledOrigin(f, `_domainkey.${f.identity}`, f.identity)}`,
      `CNAME <token>._domainkey.${f.identity} <token>.dkim.amazonses.com for each of SES's three tokens (stack outputs DkimRecord1-3, or aws sesv2 get-email-identity --email-identity ${f.identity})`,
    );
  }
  if (extra.length > 0) {
    return check(
      'dkim_cnames',
      'warn',
      `${good.length} CNAMEs to dkim.amazonses.com under _domainkey.${f.identity}, SES uses ${EASY_DKIM_KEYS}: the others are likely left from an earlier identity`,
      'Delete the CNAMEs whose tokens SES does not list (aws sesv2 get-email-identity).',
    );
  }
  return check(
    'dkim_cnames',
    'pass',
    `the ${EASY_DKIM_KEYS} Easy DKIM CNAMEs point at dkim.amazonses.com (from ${from})`,
  );
}

// ---------------------------------------------------------------------------------------------
// MAIL FROM

const SES_FEEDBACK_MX = /^feedback-smtp\.([a-z0-9-]+)\.amazonses\.com$/;

function noMailFrom(id: CheckId, f: Facts): CheckResult {
  return check(
    id,
    'warn',
    `the identity ${f.identity} has no custom MAIL FROM domain: SES's envelope sender is amazonses.com, so SPF passes but never aligns with ${f.domain} (DMARC rests on DKIM alone)`,
    `aws sesv2 put-email-identity-mail-from-attributes --email-identity ${f.identity} --mail-from-domain ${DEFAULT_MAIL_FROM_SUBDOMAIN}.${f.identity} --behavior-on-mx-failure USE_DEFAULT_VALUE`,
  );
}

function mailFromMx(f: Facts): CheckResult {
  if (f.mailFrom === undefined) return noMailFrom('mail_from_mx', f);
  if (!f.mailFromMx.ok) return notChecked('mail_from_mx', f.mailFromMx.error);
  const region = f.input.region;
  const expected = region === undefined ? undefined : `feedback-smtp.${region.name}.amazonses.com`;
  const fix = `MX ${f.mailFrom} 10 ${expected ?? 'feedback-smtp.<region>.amazonses.com'}`;
  const regionNote = region === undefined ? 'region unknown' : `region ${region.name} from ${region.source}`;
  const hosts = recordsOf(f.mailFromMx.value).map((r) => normalize(r.exchange));
  const where = `MAIL FROM ${f.mailFrom} (${f.mailFromSource})`;
  if (hosts.length === 0) {
    return check(
      'mail_from_mx',
      'fail',
      `${where} has no MX record: SES falls back to amazonses.com as the envelope sender, so SPF does not align with ${f.domain} (${regionNote})${doubledOrigin(f, f.mailFrom ?? '', f.identity)}`,
      fix,
    );
  }
  if (expected === undefined) {
    const ses = hosts.find((h) => SES_FEEDBACK_MX.test(h));
    return ses === undefined
      ? check(
          'mail_from_mx',
          'fail',
          `${where} MX points to ${hosts.join(', ')}, not to SES's feedback-smtp.<region>.amazonses.com`,
          fix,
        )
      : check(
          'mail_from_mx',
          'warn',
          `${where} MX points to ${ses}, but the region SES sends from is unknown (pass --region, or set AWS_REGION), so it cannot be compared`,
          '',
        );
  }
  if (!hosts.includes(expected)) {
    const other = hosts.map((h) => SES_FEEDBACK_MX.exec(h)?.[1]).find((r) => r !== undefined);
    const why =
      other === undefined
        ? `points to ${hosts.join(', ')}, not to ${expected}`
        : `points to SES in ${other} (${hosts.join(', ')}), but SES sends from ${region?.name} (${regionNote}): the MAIL FROM domain does not verify there`;
    return check('mail_from_mx', 'fail', `${where} MX ${why}`, fix);
  }
  if (hosts.length > 1) {
    return check(
      'mail_from_mx',
      'warn',
      `${where} MX has ${expected} and also ${hosts.filter((h) => h !== expected).join(', ')}: bounces that reach another host never come back to SES`,
      `Keep only: ${fix}`,
    );
  }
  return check('mail_from_mx', 'pass', `${where} MX ${expected} (${regionNote})`);
}

/** The record to publish: `record` with include:amazonses.com put before its `all` / `redirect`. */
function withSes(records: readonly string[]): string {
  const terms = records.flatMap((r) => r.split(/\s+/).slice(1)).filter((t) => t !== '');
  const mechanisms = [...new Set(terms.filter((t) => !/^[-~?+]?all$/i.test(t) && !/^redirect=/i.test(t)))];
  // Without an `all`, redirect= is what ends the record (RFC 7208 §6.1): kept, or the senders it
  // authorises would lose SPF.
  const all =
    terms.find((t) => /^[-~?+]?all$/i.test(t)) ?? terms.find((t) => /^redirect=/i.test(t)) ?? '~all';
  if (!mechanisms.some((t) => /^\+?include:amazonses\.com$/i.test(t)))
    mechanisms.push('include:amazonses.com');
  return `v=spf1 ${[...mechanisms, all].join(' ')}`;
}

function spfRecordsOf(lookup: Lookup<DnsAnswer<readonly string[]>> | undefined): string[] {
  return lookup?.ok === true ? txtStartingWith(lookup.value, /^v=spf1(\s|$)/i) : [];
}

function spfText(e: SpfEvaluation): string {
  const comment = e.comment === undefined ? '' : ` (${e.comment})`;
  return `${e.result}${comment}`;
}

/** Said at the end of a detail: what a zone file could not answer and was read as authorising nothing. */
function offlineNote(e: SpfEvaluation): string {
  return e.notEvaluated.length === 0
    ? ''
    : ` [offline: ${e.notEvaluated.join(', ')} not in the zone file, taken as authorising nothing]`;
}

interface SpfFinding {
  readonly status: 'warn' | 'fail';
  readonly problems: string;
  readonly record: string;
}

/**
 * What is wrong with an SPF record beyond SES's address passing: mailauth stops at the first match,
 * a receiver checking any other sender reads on, and `+all` lets everyone pass.
 */
function spfFinding(domain: string, e: SpfEvaluation, records: readonly string[]): SpfFinding | undefined {
  const lint = e.lint;
  if (lint === undefined) return undefined;
  const problems: string[] = [];
  let status: 'warn' | 'fail' = 'warn';
  if (lint.passAll) {
    status = 'fail';
    problems.push(
      `+all lets every host on the internet pass SPF for ${domain}: forged mail passes SPF, and DMARC through SPF alignment`,
    );
  }
  if (lint.lookups > SPF_LOOKUP_LIMIT) {
    status = 'fail';
    problems.push(
      `${lint.lookups} terms that query DNS (include, a, mx, ptr, exists, redirect), more than ${SPF_LOOKUP_LIMIT} (RFC 7208 §4.6.4): receivers return permerror for every sender not matched before the limit; replace a/mx/include terms by ip4:/ip6: ranges or drop unused ones`,
    );
  }
  if (lint.missing.length > 0) {
    status = 'fail';
    problems.push(
      `${lint.missing.join(', ')} ${lint.missing.length > 1 ? 'have' : 'has'} no SPF record: include: or redirect= of it is a permerror when evaluation reaches it (RFC 7208 §5.2)`,
    );
  }
  if (lint.ptr) {
    problems.push(
      'ptr must not be published (RFC 7208 §5.5: slow, unreliable, and some receivers skip or penalise it)',
    );
  }
  if (problems.length === 0) return undefined;
  const missing = new Set(lint.missing);
  const terms = withSes(records)
    .split(' ')
    .filter((t) => !/^[-~?+]?ptr(:.*)?$/i.test(t))
    .filter((t) => {
      const target = /^[-~?+]?(?:include:|redirect=)(.+)$/i.exec(t)?.[1];
      return target === undefined || !missing.has(dnsName(target));
    })
    .map((t) => (/^\+?all$/i.test(t) ? '~all' : t));
  return { status, problems: problems.join('; '), record: `TXT ${domain} "${terms.join(' ')}"` };
}

function mailFromSpf(f: Facts): CheckResult {
  if (f.mailFrom === undefined || f.mailFromSpf === undefined) return noMailFrom('mail_from_spf', f);
  if (!f.mailFromSpf.ok) return notChecked('mail_from_spf', f.mailFromSpf.error);
  const evaluation = f.mailFromSpf.value;
  const records = spfRecordsOf(f.mailFromTxt);
  const fix = `TXT ${f.mailFrom} "${withSes(records)}"`;
  const subject = `SPF of the MAIL FROM ${f.mailFrom} for SES (${SES_SENDING_ADDRESS})`;
  const finding = spfFinding(f.mailFrom, evaluation, records);
  if (finding !== undefined && evaluation.result !== 'permerror' && evaluation.result !== 'temperror') {
    return check(
      'mail_from_spf',
      finding.status === 'fail' || evaluation.result !== 'pass' ? 'fail' : 'warn',
      `${subject}: ${spfText(evaluation)}, but ${finding.problems}${offlineNote(evaluation)}`,
      finding.record,
    );
  }
  switch (evaluation.result) {
    case 'pass':
      return check('mail_from_spf', 'pass', `${subject}: pass`);
    case 'temperror':
      return notChecked('mail_from_spf', `${subject}: ${spfText(evaluation)}`);
    case 'none':
      return check(
        'mail_from_spf',
        'fail',
        `${subject}: no SPF record, so SPF fails at receivers and cannot align${doubledOrigin(f, f.mailFrom, f.identity)}`,
        fix,
      );
    case 'permerror':
      return check(
        'mail_from_spf',
        'fail',
        `${subject}: permerror${records.length > 1 ? `, ${records.length} SPF records (there must be one)` : ''} (${evaluation.comment ?? 'invalid record'})`,
        records.length > 1
          ? `${fix}\n(and delete the other SPF record${records.length > 2 ? 's' : ''})`
          : fix,
      );
    default:
      return check(
        'mail_from_spf',
        'fail',
        `${subject}: ${spfText(evaluation)}: the record does not include amazonses.com${offlineNote(evaluation)}`,
        fix,
      );
  }
}

/** SPF alignment: the MAIL FROM is SES's (MX right), its SPF passes, and it aligns with From. */
function mailFromWorks(f: Facts): boolean {
  return mailFromMx(f).status === 'pass' && mailFromSpf(f).status === 'pass';
}

function spfRecord(f: Facts): CheckResult {
  if (!f.domainSpf.ok) return notChecked('spf_record', f.domainSpf.error);
  const evaluation = f.domainSpf.value;
  const records = spfRecordsOf(f.domainTxt);
  const fix = `TXT ${f.domain} "${withSes(records)}"`;
  const subject = `SPF of ${f.domain} for SES (${SES_SENDING_ADDRESS})`;
  const finding = spfFinding(f.domain, evaluation, records);
  if (
    finding !== undefined &&
    evaluation.result !== 'permerror' &&
    evaluation.result !== 'temperror' &&
    (finding.status === 'fail' || evaluation.result === 'pass')
  ) {
    return check(
      'spf_record',
      finding.status,
      `${subject}: ${spfText(evaluation)}, but ${finding.problems}${offlineNote(evaluation)}`,
      finding.record,
    );
  }
  if (evaluation.result === 'pass') return check('spf_record', 'pass', `${subject}: pass`);
  if (evaluation.result === 'temperror')
    return notChecked('spf_record', `${subject}: ${spfText(evaluation)}`);
  if (evaluation.result === 'permerror') {
    const many =
      records.length > 1
        ? `: ${records.length} SPF records, and a receiver must treat more than one as an error (RFC 7208 §4.5)`
        : '';
    return check(
      'spf_record',
      'fail',
      `${subject}: permerror${many} (${evaluation.comment ?? 'invalid record'}); every sender of ${f.domain} fails SPF`,
      records.length > 1 ? `Publish one record instead of ${records.length}: ${fix}` : fix,
    );
  }
  const state =
    evaluation.result === 'none' ? 'no SPF record' : `${spfText(evaluation)}, SES is not authorised`;
  if (mailFromWorks(f)) {
    // What decides DMARC is SPF of the envelope sender, which SES sets to the MAIL FROM domain; the
    // From domain's own SPF is never evaluated for mail SES sends (without the MX, SES falls back
    // to amazonses.com, not to the From domain).
    return check(
      'spf_record',
      'warn',
      `${subject}: ${state}. Not needed for mail through SES: the envelope sender is ${f.mailFrom}, whose SPF passes and aligns; authorise SES here only if something checks the From domain itself${offlineNote(evaluation)}`,
      fix,
    );
  }
  return check(
    'spf_record',
    'fail',
    `${subject}: ${state}, and the MAIL FROM ${f.mailFrom ?? '(none)'} does not carry SPF for SES either (see mail_from_mx, mail_from_spf)${offlineNote(evaluation)}`,
    fix,
  );
}

// ---------------------------------------------------------------------------------------------
// DMARC

/** The tag list of a DMARC (or MTA-STS, TLS-RPT, BIMI) record: `k=v; k=v`. */
export function tagList(record: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of record.split(';')) {
    const at = part.indexOf('=');
    if (at < 0) continue;
    tags.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  return tags;
}

/** The applicable DMARC policy, or why there is none. */
export function dmarcPolicy(
  domain: string,
  found: { readonly records: readonly string[]; readonly at: string } | undefined,
): DmarcPolicy | { readonly problem: 'missing' | 'multiple' | 'invalid'; readonly detail: string } {
  if (found === undefined)
    return { problem: 'missing', detail: `no DMARC record at _dmarc.${domain} or a parent domain` };
  if (found.records.length > 1) {
    return {
      problem: 'multiple',
      detail: `${found.records.length} DMARC records at ${found.at}: a receiver that finds more than one applies none (RFC 7489 §6.6.3)`,
    };
  }
  const record = found.records[0] as string;
  const tags = tagList(record);
  const atParent = found.at !== `_dmarc.${domain}`;
  // Without p=, a record with a valid rua= is read as p=none (RFC 7489 §6.6.3).
  const p = tags.get('p')?.toLowerCase() ?? (tags.has('rua') ? 'none' : undefined);
  const policy = (atParent ? tags.get('sp') : undefined)?.toLowerCase() ?? p;
  if (policy === undefined || !['none', 'quarantine', 'reject'].includes(policy)) {
    return { problem: 'invalid', detail: `${found.at} "${record}": p= must be none, quarantine or reject` };
  }
  const mode = (tag: string): 'r' | 's' | undefined => {
    const value = (tags.get(tag) ?? 'r').toLowerCase();
    return value === 'r' || value === 's' ? value : undefined;
  };
  const adkim = mode('adkim');
  const aspf = mode('aspf');
  if (adkim === undefined || aspf === undefined) {
    return { problem: 'invalid', detail: `${found.at} "${record}": adkim and aspf must be r or s` };
  }
  return { record, at: found.at, tags, policy, adkim, aspf };
}

function policyOf(f: Facts): ReturnType<typeof dmarcPolicy> | undefined {
  return f.dmarc.ok ? dmarcPolicy(f.domain, f.dmarc.value) : undefined;
}

/** A DMARC record with `changes` applied (tags kept in their order, new ones appended). */
function dmarcWith(
  f: Facts,
  policy: DmarcPolicy | undefined,
  changes: Readonly<Record<string, string>>,
): string {
  const tags = new Map<string, string>(policy?.tags ?? [['v', 'DMARC1']]);
  tags.set('v', 'DMARC1');
  for (const [k, v] of Object.entries(changes)) tags.set(k, v);
  const at = policy?.at ?? `_dmarc.${f.domain}`;
  return `TXT ${at} "${[...tags].map(([k, v]) => `${k}=${v}`).join('; ')}"`;
}

function reportAddress(f: Facts, policy?: DmarcPolicy): string {
  const domain = policy === undefined ? f.domain : policy.at.slice('_dmarc.'.length);
  return `mailto:dmarc@${domain}`;
}

/**
 * A TXT at `_dmarc.<domain>` that means to be DMARC but does not begin with `v=DMARC1` (tags in
 * another order, a typo): receivers ignore it (RFC 7489 §6.4 and §6.6.3), so there is no policy.
 */
function misplacedDmarc(f: Facts): CheckResult | undefined {
  if (!f.dmarcTxt.ok) return undefined;
  const meant = recordsOf(f.dmarcTxt.value)
    .map(joined)
    .filter((r) => /v\s*=\s*dmarc/i.test(r) || /(^|;)\s*p\s*=\s*(none|quarantine|reject)\b/i.test(r));
  const record = meant[0];
  if (record === undefined || meant.length > 1) return undefined;
  const tags = new Map<string, string>([['v', 'DMARC1']]);
  for (const [k, v] of tagList(record)) if (k !== 'v') tags.set(k, v);
  if (!tags.has('p')) tags.set('p', 'quarantine');
  return check(
    'dmarc_record',
    'fail',
    `_dmarc.${f.domain} "${record}" is not a DMARC record: it must begin with v=DMARC1 (then the other tags), so receivers ignore it and ${f.domain} has no DMARC policy`,
    `Replace it with: TXT _dmarc.${f.domain} "${[...tags].map(([k, v]) => `${k}=${v}`).join('; ')}"`,
  );
}

function dmarcRecord(f: Facts): CheckResult {
  if (!f.dmarc.ok) return notChecked('dmarc_record', f.dmarc.error);
  const policy = policyOf(f);
  if (policy === undefined) return notChecked('dmarc_record', 'no answer');
  if ('problem' in policy && policy.problem === 'missing') {
    const misplaced = misplacedDmarc(f);
    if (misplaced !== undefined) return misplaced;
  }
  if ('problem' in policy) {
    const fix =
      policy.problem === 'multiple'
        ? `Keep one record at ${f.dmarc.value?.at}, e.g. ${dmarcWith(f, undefined, { p: 'quarantine', rua: reportAddress(f) })}`
        : dmarcWith(f, undefined, { p: 'quarantine', rua: reportAddress(f) });
    const doubled = policy.problem === 'missing' ? doubledOrigin(f, `_dmarc.${f.domain}`) : '';
    return check('dmarc_record', 'fail', `${policy.detail}${doubled}`, fix);
  }
  const where = `${policy.at} "${policy.record}"`;
  // At a parent, sp= (when given) is the policy of the From domain, and the tag to change.
  const bySp = policy.at !== `_dmarc.${f.domain}` && policy.tags.has('sp');
  const tag = bySp ? 'sp' : 'p';
  if (policy.policy === 'none') {
    const which = bySp ? `sp=none (the policy of subdomains such as ${f.domain})` : 'p=none';
    return check(
      'dmarc_record',
      'warn',
      `${where}: ${which} only monitors; receivers take no action on mail that fails DMARC. Move to quarantine once the reports show only your own senders`,
      dmarcWith(f, policy, {
        [tag]: 'quarantine',
        ...(policy.tags.has('rua') ? {} : { rua: reportAddress(f, policy) }),
      }),
    );
  }
  const pct = policy.tags.get('pct');
  if (pct !== undefined && pct.trim() !== '100') {
    // RFC 7489 §6.3: the policy applies to pct % of the failing mail; the rest gets the next one
    // down (reject -> quarantine, quarantine -> none). pct=0 is monitoring under another name.
    return check(
      'dmarc_record',
      'warn',
      `${where}: policy ${policy.policy} at pct=${pct}: applied to only ${pct} % of the mail that fails DMARC; the rest gets ${policy.policy === 'reject' ? 'quarantine' : 'no action'}. Raise pct to 100 (or drop the tag) once the reports show only your own senders`,
      dmarcWith(f, policy, { pct: '100' }),
    );
  }
  const sp = policy.tags.get('sp')?.toLowerCase();
  if (!bySp && sp === 'none') {
    return check(
      'dmarc_record',
      'warn',
      `${where}: policy ${policy.policy} for ${f.domain}, but sp=none leaves its subdomains unprotected: mail forged from any name under ${f.domain} (which has no DMARC record of its own) is only monitored`,
      dmarcWith(f, policy, { sp: policy.policy }),
    );
  }
  return check('dmarc_record', 'pass', `${where}: policy ${policy.policy}`);
}

/** Relaxed alignment: both names share the identity's domain (its organizational domain here). */
function relaxedAligned(a: string, b: string, anchor: string): boolean {
  const under = (name: string, parent: string) => name === parent || name.endsWith(`.${parent}`);
  return under(a, b) || under(b, a) || (under(a, anchor) && under(b, anchor));
}

/**
 * The organizational domain relaxed alignment is judged under: the identity, or the parent of the
 * From domain whose DMARC record applies (the DMARCbis tree walk finds the organizational domain's
 * record), whichever is higher. bounce.example.com aligns with news.example.com under relaxed
 * alignment: both are in example.com.
 */
function organizationalDomain(f: Facts): string {
  const policy = policyOf(f);
  const recordDomain =
    policy !== undefined && !('problem' in policy) ? policy.at.slice('_dmarc.'.length) : undefined;
  return recordDomain?.includes('.') &&
    f.domain.endsWith(`.${recordDomain}`) &&
    recordDomain.length < f.identity.length
    ? recordDomain
    : f.identity;
}

interface Alignment {
  readonly aligned: boolean;
  readonly why: string;
}

/** Easy DKIM signs: the CNAMEs are right, or SES says SUCCESS and no CNAME is wrong. */
function dkimInPlace(f: Facts): boolean {
  return (
    dkimCnames(f).status === 'pass' ||
    (f.input.ses.kind === 'found' &&
      f.input.ses.facts.dkimStatus === 'SUCCESS' &&
      dkimCnames(f).status !== 'fail')
  );
}

function dkimAlignment(f: Facts): Alignment {
  const policy = policyOf(f);
  const strict = policy !== undefined && !('problem' in policy) && policy.adkim === 's';
  if (!dkimInPlace(f))
    return { aligned: false, why: 'DKIM: the Easy DKIM CNAMEs are not all in place (dkim_cnames)' };
  // Easy DKIM signs with d=<identity>.
  const aligned = strict
    ? f.identity === f.domain
    : relaxedAligned(f.identity, f.domain, organizationalDomain(f));
  return aligned
    ? { aligned, why: `DKIM d=${f.identity} aligns (${strict ? 'strict' : 'relaxed'})` }
    : {
        aligned,
        why: `DKIM d=${f.identity} does not align with ${f.domain} under adkim=s (strict needs the same name)`,
      };
}

function spfAlignment(f: Facts): Alignment {
  const policy = policyOf(f);
  const strict = policy !== undefined && !('problem' in policy) && policy.aspf === 's';
  if (f.mailFrom === undefined)
    return { aligned: false, why: 'SPF: no custom MAIL FROM, the envelope sender is amazonses.com' };
  if (!mailFromWorks(f))
    return {
      aligned: false,
      why: `SPF: the MAIL FROM ${f.mailFrom} is not set up (mail_from_mx, mail_from_spf)${strict ? ', and aspf=s keeps a MAIL FROM subdomain from aligning anyway' : ''}`,
    };
  const aligned = strict
    ? f.mailFrom === f.domain
    : relaxedAligned(f.mailFrom, f.domain, organizationalDomain(f));
  return aligned
    ? { aligned, why: `SPF via MAIL FROM ${f.mailFrom} aligns (${strict ? 'strict' : 'relaxed'})` }
    : {
        aligned,
        why: `SPF via MAIL FROM ${f.mailFrom} does not align${strict ? ': aspf=s needs the MAIL FROM to be exactly the From domain, and SES requires a subdomain' : ''}`,
      };
}

/**
 * Neither mechanism is known to align, and one of them is unknown because its lookup failed (or
 * DNS cannot list the DKIM tokens): a timeout is not a DMARC failure.
 */
function alignmentUnknown(f: Facts, spf: Alignment, dkim: Alignment): string | undefined {
  if (spf.aligned || dkim.aligned) return undefined;
  const unknown = (c: CheckResult) => c.status === 'warn' && c.detail.startsWith('not checked');
  const which = [
    ...(unknown(dkimCnames(f)) ? ['dkim_cnames'] : []),
    ...(f.mailFrom !== undefined && (unknown(mailFromMx(f)) || unknown(mailFromSpf(f)))
      ? ['mail_from_mx', 'mail_from_spf']
      : []),
  ];
  return which.length === 0 ? undefined : `alignment unknown: ${which.join(', ')} could not be checked`;
}

function dmarcAlignment(f: Facts, spf: Alignment, dkim: Alignment): CheckResult {
  const policy = policyOf(f);
  const modes =
    policy === undefined || 'problem' in policy
      ? 'no usable DMARC record, judged relaxed'
      : `adkim=${policy.adkim}, aspf=${policy.aspf}`;
  const detail = `${dkim.why}; ${spf.why} (${modes})`;
  if (dkim.aligned && spf.aligned) return check('dmarc_alignment', 'pass', detail);
  const usable = policy !== undefined && !('problem' in policy) ? policy : undefined;
  const fixes: string[] = [];
  const relax: Record<string, string> = {};
  if (!dkim.aligned) {
    if (dkimCnames(f).status !== 'pass') fixes.push('Publish the DKIM CNAMEs (see dkim_cnames)');
    if (usable?.adkim === 's' && f.identity !== f.domain) relax.adkim = 'r';
  }
  if (!spf.aligned) {
    if (!mailFromWorks(f)) fixes.push('Set up the MAIL FROM domain (see mail_from_mx, mail_from_spf)');
    if (usable?.aspf === 's') relax.aspf = 'r';
  }
  if (Object.keys(relax).length > 0) fixes.push(dmarcWith(f, usable, relax));
  const unknown = alignmentUnknown(f, spf, dkim);
  if (unknown !== undefined) return notChecked('dmarc_alignment', `${unknown} (${detail})`);
  if (dkim.aligned || spf.aligned) {
    return check(
      'dmarc_alignment',
      'warn',
      `${detail}: DMARC passes on one mechanism, with no second if it breaks`,
      fixes.join('\n'),
    );
  }
  return check(
    'dmarc_alignment',
    'fail',
    `${detail}: DMARC fails for mail from ${f.domain}`,
    fixes.join('\n'),
  );
}

function dmarcRua(f: Facts): CheckResult {
  const policy = policyOf(f);
  if (policy === undefined || 'problem' in policy) {
    return check('dmarc_rua', 'warn', 'no usable DMARC record to carry rua= (see dmarc_record)', '');
  }
  const rua = policy.tags.get('rua');
  if (rua === undefined || rua === '') {
    return check(
      'dmarc_rua',
      'warn',
      `${policy.at} has no rua=: no aggregate reports, so you cannot see who sends as ${f.domain} or whether SES mail passes`,
      dmarcWith(f, policy, { rua: reportAddress(f, policy) }),
    );
  }
  const uris = rua.split(',').map((u) => u.trim());
  const valid = (u: string): boolean =>
    /^mailto:[^@\s]+@[^@\s]+\.[^@\s]+$/i.test(u.replace(/!\d+[kmgt]?$/i, ''));
  const invalid = uris.filter((u) => !valid(u));
  if (invalid.length > 0) {
    // Keep the addresses meant: a bare address gets its mailto: (reports go where the owner wanted).
    const repaired = uris
      .map((u) => (valid(u) ? u : valid(`mailto:${u}`) ? `mailto:${u}` : undefined))
      .filter((u) => u !== undefined);
    return check(
      'dmarc_rua',
      'fail',
      `${policy.at} rua=${rua}: ${invalid.join(', ')} is not a mailto: address, so receivers send no reports`,
      dmarcWith(f, policy, {
        rua: repaired.length > 0 ? [...new Set(repaired)].join(',') : reportAddress(f, policy),
      }),
    );
  }
  return check('dmarc_rua', 'pass', `aggregate reports go to ${uris.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// MTA-STS, TLS-RPT, BIMI

function mtaSts(f: Facts): CheckResult {
  if (!f.mtaSts.ok) return notChecked('mta_sts', f.mtaSts.error);
  const name = `_mta-sts.${f.domain}`;
  // id= only has to change whenever the policy file does.
  const fix = `TXT ${name} "v=STSv1; id=1"\nand serve the policy at https://mta-sts.${f.domain}/.well-known/mta-sts.txt`;
  const records = txtStartingWith(f.mtaSts.value, /^v=STSv1\s*(;|$)/);
  const policyNote = `the policy file https://mta-sts.${f.domain}/.well-known/mta-sts.txt needs HTTPS and is not fetched by the doctor (check it with curl)`;
  if (records.length === 0) {
    return check(
      'mta_sts',
      'warn',
      `no MTA-STS record at ${name}: mail sent to ${f.domain} can be downgraded to plain text (it protects receiving, not what SES sends)`,
      fix,
    );
  }
  if (records.length > 1)
    return check(
      'mta_sts',
      'fail',
      `${records.length} MTA-STS records at ${name}: senders then apply none (RFC 8461 §3.1)`,
      fix,
    );
  const record = records[0] as string;
  const recordId = tagList(record).get('id');
  if (recordId === undefined || !/^[A-Za-z0-9]{1,32}$/.test(recordId)) {
    return check(
      'mta_sts',
      'fail',
      `${name} "${record}": id= must be 1 to 32 letters and digits (RFC 8461 §3.1)`,
      fix,
    );
  }
  return check('mta_sts', 'pass', `${name} "${record}"; ${policyNote}`);
}

function tlsRpt(f: Facts): CheckResult {
  if (!f.tlsRpt.ok) return notChecked('tls_rpt', f.tlsRpt.error);
  const name = `_smtp._tls.${f.domain}`;
  const fix = `TXT ${name} "v=TLSRPTv1; rua=mailto:tls-reports@${f.domain}"`;
  const records = txtStartingWith(f.tlsRpt.value, /^v=TLSRPTv1\s*(;|$)/);
  if (records.length === 0) {
    return check(
      'tls_rpt',
      'warn',
      `no TLS-RPT record at ${name}: no reports of TLS failures delivering mail to ${f.domain}`,
      fix,
    );
  }
  if (records.length > 1)
    return check(
      'tls_rpt',
      'fail',
      `${records.length} TLS-RPT records at ${name}: senders use none (RFC 8460 §3)`,
      fix,
    );
  const record = records[0] as string;
  const rua = tagList(record).get('rua') ?? '';
  const uris = rua
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  if (uris.length === 0 || !uris.every((u) => /^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+)$/i.test(u))) {
    return check(
      'tls_rpt',
      'fail',
      `${name} "${record}": rua= must list mailto: or https: URIs (RFC 8460 §3)`,
      fix,
    );
  }
  return check('tls_rpt', 'pass', `${name} "${record}"`);
}

function bimi(f: Facts): CheckResult {
  if (!f.bimi.ok) return notChecked('bimi', f.bimi.error);
  const name = `default._bimi.${f.domain}`;
  const records = txtStartingWith(f.bimi.value, /^v=BIMI1\s*(;|$)/i);
  if (records.length === 0) {
    return check(
      'bimi',
      'pass',
      `informational: no BIMI record at ${name}; it is optional (a logo beside your mail in supporting inboxes; needs DMARC quarantine or reject, and a mark certificate at Gmail)`,
    );
  }
  const fixRecord = `TXT ${name} "v=BIMI1; l=https://${f.domain}/bimi/logo.svg"`;
  if (records.length > 1)
    return check(
      'bimi',
      'fail',
      `informational: ${records.length} BIMI records at ${name}: mailbox providers use none`,
      fixRecord,
    );
  const record = records[0] as string;
  const location = tagList(record).get('l');
  if (location === undefined || (location !== '' && !/^https:\/\/\S+\.svg$/i.test(location))) {
    return check(
      'bimi',
      'fail',
      `informational: ${name} "${record}": l= must be an https:// URL of an SVG logo (or empty to decline)`,
      fixRecord,
    );
  }
  // Whether DMARC enforces is unknown when its lookup failed: not a reason to warn of p=none.
  if (!f.dmarc.ok) return notChecked('bimi', `DMARC policy: ${f.dmarc.error}`);
  const policy = policyOf(f);
  const enforced =
    policy !== undefined &&
    !('problem' in policy) &&
    policy.policy !== 'none' &&
    (policy.tags.get('pct') ?? '100') === '100';
  if (!enforced) {
    return check(
      'bimi',
      'warn',
      `informational: ${name} is published, but mailbox providers show a BIMI logo only under DMARC p=quarantine or p=reject at pct=100`,
      policy !== undefined && !('problem' in policy)
        ? dmarcWith(f, policy, { p: 'quarantine' })
        : dmarcWith(f, undefined, { p: 'quarantine', rua: reportAddress(f) }),
    );
  }
  return check(
    'bimi',
    'pass',
    `informational: ${name} "${record}" (the logo and any a= certificate are not fetched)`,
  );
}

// ---------------------------------------------------------------------------------------------
// Gmail and Yahoo bulk-sender rules (February 2024)

function bulkSender(f: Facts, spf: Alignment, dkim: Alignment): CheckResult {
  const policy = policyOf(f);
  const unsubscribe =
    'one-click unsubscribe: Baton refuses broadcast mail without listUnsubscribe and sends List-Unsubscribe with List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058)';
  const rules = 'Gmail and Yahoo bulk-sender rules';
  // A DMARC lookup that failed (a CNAME to a provider outside the zone file) is not a missing record.
  if (!f.dmarc.ok) return notChecked('bulk_sender', `${rules}: DMARC: ${f.dmarc.error}`);
  if (policy === undefined || 'problem' in policy) {
    return check(
      'bulk_sender',
      'fail',
      `${rules}: a DMARC record is required (p=none is enough for them); ${unsubscribe}`,
      dmarcWith(f, undefined, { p: 'none', rua: reportAddress(f) }),
    );
  }
  const unknown = alignmentUnknown(f, spf, dkim);
  if (unknown !== undefined) return notChecked('bulk_sender', `${rules}: ${unknown}`);
  if (!spf.aligned && !dkim.aligned) {
    return check(
      'bulk_sender',
      'fail',
      `${rules}: the From domain must align with SPF or DKIM, and neither does (see dmarc_alignment)`,
      'See dkim_cnames, mail_from_mx and mail_from_spf.',
    );
  }
  // SES's envelope always passes SPF (its own or the MAIL FROM's); DKIM is what can be missing.
  // Gmail and Yahoo want DKIM set up and DMARC passing, not DKIM aligned (adkim=s with a parent
  // identity signs d=<parent>: set up, DMARC passing through SPF).
  if (!dkimInPlace(f)) {
    return check(
      'bulk_sender',
      'warn',
      `${rules}: bulk senders need both SPF and DKIM, and DKIM for ${f.domain} is not in place; DMARC ${policy.policy}; ${unsubscribe}`,
      'Publish the DKIM CNAMEs (see dkim_cnames).',
    );
  }
  return check(
    'bulk_sender',
    'pass',
    `${rules}: DMARC p=${policy.policy} (p=none is enough for them), aligned via ${[dkim.aligned ? 'DKIM' : '', spf.aligned ? 'SPF' : ''].filter(Boolean).join(' and ')}; ${unsubscribe}; keep spam complaints under 0.3 % (Postmaster Tools; Baton alarms at 0.08 %)`,
  );
}
