/**
 * `npm run doctor -- <domain> [--stack <name>] [--region <r>] [--zone <file>] [--mail-from <domain>]
 * [--json]`: the arguments, where the region comes from, and the run, with AWS and the file system
 * passed in (scripts/doctor.ts wires the real ones) so the tests need neither.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CHECK_IDS, type CheckResult, runChecks, type SesView } from '../lambdas/domain/doctor/checks.ts';
import { type DnsPort, dnsName } from '../lambdas/domain/doctor/dns.ts';
import { exitCodeOf, formatReport, reportJson } from '../lambdas/domain/doctor/report.ts';
import { ZoneDns } from '../lambdas/domain/doctor/zone-dns.ts';
import { parseZone, type ZoneRecord, ZoneSyntaxError } from '../lambdas/domain/doctor/zone-file.ts';

export const EXIT_USAGE = 2;

export const USAGE = `Usage: npm run doctor -- <domain> [options]

Checks what decides whether mail Baton sends from <domain> through SES is trusted (DKIM, MAIL FROM,
SPF, DMARC, MTA-STS, TLS-RPT, BIMI, Gmail/Yahoo bulk-sender rules) and prints what to publish.

Options:
  --stack <name>        read the SES identity (verification, DKIM tokens, MAIL FROM) of a deployed stack
  --region <region>     the AWS region SES sends from (default: the stack's, else AWS_REGION,
                        AWS_DEFAULT_REGION or the AWS config file)
  --zone <file>         read a BIND zone file instead of DNS (offline)
  --mail-from <domain>  the MAIL FROM domain without a stack (default: bounce.<domain>)
  --json                print one JSON object {"domain", "checks": [{"id","status","detail","fix"}]}
  --help                this text

Exit code: 0 no check failed, 1 a check failed, 2 usage error or the checks could not run.
Checks: ${CHECK_IDS.join(', ')}. See docs/doctor.md.`;

/** A mistake in the command line (or an input it names): exit code 2 with the message. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface DoctorArgs {
  readonly domain: string;
  readonly stack: string | undefined;
  readonly region: string | undefined;
  readonly zone: string | undefined;
  readonly mailFrom: string | undefined;
  readonly json: boolean;
}

const DOMAIN = /^(?=.{1,253}$)((?!-)[a-z0-9-]{1,63}(?<!-)\.)+[a-z][a-z0-9-]*[a-z0-9]$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
const VALUE_FLAGS = new Set(['--stack', '--region', '--zone', '--mail-from']);

export function parseDoctorArgs(argv: readonly string[]): DoctorArgs | 'help' {
  const values = new Map<string, string>();
  const positional: string[] = [];
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') return 'help';
    if (arg === '--json') {
      json = true;
      continue;
    }
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    if (VALUE_FLAGS.has(flag)) {
      const value = inline ?? argv[++i];
      if (value === undefined || value === '' || value.startsWith('--'))
        throw new UsageError(`${flag} needs a value`);
      if (values.has(flag)) throw new UsageError(`${flag} is given twice`);
      values.set(flag, value);
      continue;
    }
    if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    positional.push(arg);
  }
  if (positional.length === 0)
    throw new UsageError('missing <domain>, e.g. npm run doctor -- example.com --zone example.zone');
  if (positional.length > 1) throw new UsageError(`one domain at a time, got ${positional.join(', ')}`);
  const domain = dnsName(positional[0] as string);
  if (!DOMAIN.test(domain)) throw new UsageError(`"${positional[0]}" is not a domain name`);
  const region = values.get('--region');
  if (region !== undefined && !REGION.test(region))
    throw new UsageError(`"${region}" is not an AWS region such as eu-west-1`);
  const mailFromValue = values.get('--mail-from');
  const mailFrom = mailFromValue === undefined ? undefined : dnsName(mailFromValue);
  if (mailFrom !== undefined && !DOMAIN.test(mailFrom))
    throw new UsageError(`--mail-from "${mailFrom}" is not a domain name`);
  if (mailFrom !== undefined) {
    // SES takes a MAIL FROM only as a subdomain of the identity, and one that receives no mail:
    // its MX must be SES's feedback host, which would take the domain's own inbound mail away.
    if (mailFrom === domain || domain.endsWith(`.${mailFrom}`))
      throw new UsageError(
        `--mail-from ${mailFrom} is ${mailFrom === domain ? 'the domain itself' : 'a parent of the domain'}: SES needs a subdomain that receives no mail, such as bounce.${domain}`,
      );
    const labels = domain.split('.');
    const parents = labels.slice(0, -1).map((_, i) => labels.slice(i).join('.'));
    if (!parents.some((parent) => mailFrom.endsWith(`.${parent}`)))
      throw new UsageError(
        `--mail-from ${mailFrom} is not under ${domain} or its parent domain: SES needs a subdomain of the identity, such as bounce.${domain}`,
      );
  }
  return { domain, stack: values.get('--stack'), region, zone: values.get('--zone'), mailFrom, json };
}

/**
 * The region from the environment or the AWS config file, as the SDK would find it: AWS_REGION,
 * AWS_DEFAULT_REGION, then `region` in the profile's section of AWS_CONFIG_FILE (~/.aws/config).
 */
export function regionFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string,
): { name: string; source: string } | undefined {
  for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION']) {
    const value = env[name]?.trim();
    if (value) return { name: value, source: name };
  }
  const file = env.AWS_CONFIG_FILE ?? join(env.HOME ?? homedir(), '.aws', 'config');
  let text: string;
  try {
    text = readFile(file);
  } catch {
    return undefined;
  }
  const profile = env.AWS_PROFILE ?? 'default';
  const wanted = profile === 'default' ? ['default', 'profile default'] : [`profile ${profile}`];
  let inSection = false;
  for (const line of text.split(/\r?\n/)) {
    const section = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (section) {
      inSection = wanted.includes((section[1] as string).trim());
      continue;
    }
    const setting = /^\s*region\s*=\s*(\S+)\s*$/.exec(line);
    if (inSection && setting) return { name: setting[1] as string, source: `${file} [${profile}]` };
  }
  return undefined;
}

/**
 * The domains a zone file answers for: its SOA owners (a zone for example.com answers for
 * news.example.com, and for _dmarc.example.com when the doctor walks up from the subdomain), else
 * the highest parent of `domain` (or `domain` itself) that the file holds names under, plus `domain`.
 * A file for another domain altogether is a usage error, not a zone where every record is missing.
 */
export function zoneApexes(records: readonly ZoneRecord[], domain: string): string[] {
  const under = (name: string, parent: string): boolean => name === parent || name.endsWith(`.${parent}`);
  const soa = [...new Set(records.filter((r) => r.type === 'SOA').map((r) => r.name))];
  if (soa.length > 0) {
    if (!soa.some((apex) => under(domain, apex))) {
      throw new UsageError(
        `the zone file is for ${soa.join(', ')} (its SOA), not for ${domain} or a parent of it (check $ORIGIN and the domain)`,
      );
    }
    return [...soa, domain];
  }
  const labels = domain.split('.');
  for (let i = labels.length - 2; i >= 0; i--) {
    const parent = labels.slice(i).join('.');
    if (records.some((r) => under(r.name, parent))) return [...new Set([parent, domain])];
  }
  throw new UsageError(
    `the zone file holds no name at or under ${domain} or a parent of it (check $ORIGIN and the domain)`,
  );
}

/** What a deployed stack says: its sending domains and region (CloudFormation outputs). */
export interface StackFacts {
  readonly sendingDomains: readonly string[];
  readonly region: string | undefined;
}

export interface DoctorDeps {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile: (path: string) => string;
  /** Real DNS (only called without --zone). */
  readonly dns: () => DnsPort;
  readonly describeStack: (stack: string, region: string | undefined) => Promise<StackFacts>;
  readonly readIdentity: (identity: string, region: string) => Promise<SesView>;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Thrown by `describeStack` when CloudFormation has no such stack (exit code 2). */
export class StackNotFoundError extends Error {
  override readonly name = 'StackNotFoundError';
}

/** The sending domain of the stack that `domain` sends as: itself, or the nearest parent listed. */
export function identityFor(domain: string, sendingDomains: readonly string[]): string | undefined {
  return [...sendingDomains]
    .map((d) => d.toLowerCase())
    .filter((d) => domain === d || domain.endsWith(`.${d}`))
    .sort((a, b) => b.length - a.length)[0];
}

export async function runDoctor(argv: readonly string[], deps: DoctorDeps): Promise<number> {
  let args: DoctorArgs | 'help';
  try {
    args = parseDoctorArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    deps.err(`doctor: ${error.message}\nRun "npm run doctor -- --help" for usage.`);
    return EXIT_USAGE;
  }
  if (args === 'help') {
    deps.out(USAGE);
    return 0;
  }

  let dns: DnsPort;
  if (args.zone === undefined) {
    dns = deps.dns();
  } else {
    let text: string;
    try {
      text = deps.readFile(args.zone);
    } catch (error) {
      deps.err(
        `doctor: cannot read the zone file ${args.zone}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
      return EXIT_USAGE;
    }
    try {
      const records = parseZone(text, { origin: args.domain });
      dns = new ZoneDns(records, `zone file ${args.zone}`, zoneApexes(records, args.domain));
    } catch (error) {
      if (!(error instanceof ZoneSyntaxError) && !(error instanceof UsageError)) throw error;
      deps.err(`doctor: ${args.zone}: ${error.message}`);
      return EXIT_USAGE;
    }
  }

  let ses: SesView = { kind: 'none' };
  let region = args.region === undefined ? undefined : { name: args.region, source: '--region' };
  if (args.stack !== undefined) {
    try {
      const stack = await deps.describeStack(args.stack, args.region);
      region ??=
        stack.region === undefined ? undefined : { name: stack.region, source: `stack ${args.stack}` };
      region ??= regionFromEnvironment(deps.env, deps.readFile);
      const identity = identityFor(args.domain, stack.sendingDomains);
      if (identity === undefined) {
        ses = {
          kind: 'unavailable',
          reason: `${args.domain} is not a sending domain of stack ${args.stack} (it sends for ${stack.sendingDomains.join(', ') || 'no domain'})`,
        };
      } else if (region === undefined) {
        ses = { kind: 'unavailable', reason: 'the region of SES is unknown (pass --region)' };
      } else {
        ses = await deps.readIdentity(identity, region.name);
      }
    } catch (error) {
      deps.err(
        error instanceof StackNotFoundError
          ? `doctor: ${error.message}`
          : `doctor: could not read stack ${args.stack} from AWS: ${(error as Error).name}: ${(error as Error).message}`,
      );
      return EXIT_USAGE;
    }
  }
  region ??= regionFromEnvironment(deps.env, deps.readFile);

  let checks: CheckResult[];
  try {
    checks = await runChecks(
      {
        domain: args.domain,
        ses,
        region,
        ...(args.mailFrom === undefined ? {} : { mailFromDomain: args.mailFrom }),
      },
      dns,
    );
  } catch (error) {
    // Exit code 1 means "a check failed": an error of the doctor itself is "could not run" (2),
    // and stdout stays empty for --json.
    deps.err(`doctor: the checks could not run: ${(error as Error).name}: ${(error as Error).message}`);
    return EXIT_USAGE;
  }
  const report = { domain: args.domain, checks };
  if (args.json) {
    deps.out(reportJson(report));
  } else {
    const regionText =
      region === undefined ? 'region unknown' : `region ${region.name} (from ${region.source})`;
    const stackText = args.stack === undefined ? 'no stack' : `stack ${args.stack}`;
    deps.out(
      formatReport(report, `Domain doctor: ${args.domain} — ${dns.description}, ${stackText}, ${regionText}`),
    );
  }
  return exitCodeOf(checks);
}
