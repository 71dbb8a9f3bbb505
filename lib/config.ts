import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import { DEADLINE_RESERVE_MS, PACING_WINDOW_MS } from '../lambdas/domain/delivery/pacer.ts';
import { MAX_RECIPIENTS } from '../lambdas/domain/send/send-request.ts';
import { DEFAULT_MAIL_FROM_SUBDOMAIN, LANES, type Lane } from '../lambdas/shared/names.ts';

/**
 * Deployment settings of a Baton stack. Every field except `domain` (or `domains`) has a default;
 * all of them can be given as CDK context (`cdk.json` or `npx cdk deploy -c key=value`).
 */
export interface BatonConfig {
  /**
   * The primary sending domain, e.g. `mail.example.com`: `domain` when given, else the first of
   * `domains`. Its identity keeps the construct id a one-domain stack always had, so adding domains
   * to a deployed stack never replaces (deletes and re-verifies) it.
   */
  readonly domain: string;
  /**
   * Every sending domain (primary first): each is an SES domain identity, created with Easy DKIM and
   * a custom MAIL FROM, or imported when listed in `importDomains`. The senders may send from these
   * identities only; keys may name these domains and their subdomains only.
   * @default [domain]
   */
  readonly domains: readonly string[];
  /**
   * Those of `domains` whose SES identity already exists in the account (verified by hand or by
   * another stack): the stack references them instead of creating them, which CloudFormation would
   * refuse (AlreadyExists). Their DKIM and MAIL FROM stay as configured where they were made.
   * @default []
   */
  readonly importDomains: readonly string[];
  /**
   * The account is still in the SES sandbox: SES then also authorises every send against the
   * recipients' identities (only verified addresses and domains may receive), and the account may
   * send one message per second, so `maxSendRate` defaults to 1.
   * @default false
   */
  readonly sandbox: boolean;
  /**
   * With `sandbox`: the verified recipient identities (addresses or domains) the senders may mail.
   * Each must be a verified identity of the account; the sender role gets `ses:SendEmail` on them.
   * @default []
   */
  readonly sandboxRecipients: readonly string[];
  /**
   * The account's Lambda concurrent executions quota in the region (Service Quotas, "Concurrent
   * executions"). The queue consumers' concurrency caps plus a reserve for the api function must fit
   * in it: a consumer throttled by the account limit returns its batch to the queue, which burns
   * receives towards the dead-letter queue.
   * @default 1000 (the AWS default; a new account may start at 10, which the default settings fit)
   */
  readonly lambdaConcurrency: number;
  /**
   * Where alarm notifications are emailed. SNS sends a confirmation mail first.
   * @default - alarms are published to the alarm topic with no subscriber
   */
  readonly alarmEmail?: string | undefined;
  /**
   * How long message records (and their event timelines) are kept, in days (DynamoDB TTL).
   * @default 30
   */
  readonly retentionDays: number;
  /**
   * The account's SES maximum send rate (sends per second) that Baton may use, shared between the lanes.
   * Find yours in the SES console (Account dashboard) or with `aws sesv2 get-account`.
   * @default 14 (the SES production default)
   */
  readonly maxSendRate: number;
  /**
   * Fraction of `maxSendRate` reserved for the transactional lane; broadcast gets the rest. Kept above
   * one half so a campaign can never starve password resets.
   * @default 0.7
   */
  readonly transactionalShare: number;
  /**
   * Subdomain used as the custom MAIL FROM domain (`<sub>.<domain>`), so SPF aligns with the From
   * domain for DMARC instead of passing only for amazonses.com.
   * @default 'bounce'
   */
  readonly mailFromSubdomain: string;
  /**
   * Retention of the functions' and the API's log groups, in days; one of the values CloudWatch
   * Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...).
   * @default 30
   */
  readonly logRetentionDays: RetentionDays;
  /**
   * Steady-state request rate (requests per second) of the HTTP API stage. A backstop for the whole
   * deployment: per-key limits are enforced in code.
   * @default 50
   */
  readonly apiRateLimit: number;
  /**
   * Burst capacity (requests) of the HTTP API stage.
   * @default 100
   */
  readonly apiBurstLimit: number;
  /**
   * Deploy the SMTP front door: a Fargate service behind a Network Load Balancer on 587 (STARTTLS)
   * and 465 (implicit TLS). Off, the stack has no VPC, load balancer or container at all.
   * @default false
   */
  readonly smtp: boolean;
  /**
   * With `smtp`: the Secrets Manager secret (name or ARN) holding the SMTP server's TLS certificate,
   * a JSON SecretString `{"certificate": "<PEM chain>", "privateKey": "<PEM key>"}` that the server
   * re-reads every few minutes. Without it the service is deployed on standby, with no task running
   * (the server refuses to start without a certificate).
   * @default - none: the service runs no task until one is given
   */
  readonly smtpCertificateSecret?: string | undefined;
  /**
   * With `smtpCertificateSecret`: the ARN of the customer managed KMS key that secret is encrypted
   * with, which the tasks are then allowed to decrypt with through Secrets Manager.
   * @default - the secret uses the account's `aws/secretsmanager` key
   */
  readonly smtpCertificateKey?: string | undefined;
  /**
   * The name the SMTP server greets with and the certificate must cover; publish it as a CNAME of
   * the load balancer (stack output `SmtpDnsRecord`).
   * @default `smtp.<domain>`
   */
  readonly smtpHostname: string;
  /**
   * The most SMTP tasks scaling may run (at least 2: one per Availability Zone).
   * @default 4
   */
  readonly smtpMaxTasks: number;
  /**
   * The most webhook delivery functions that run at once (their event source mapping's maximum
   * concurrency, 2..1000). Each takes a batch of 10 deliveries and waits at most 15 s on an endpoint;
   * a per-endpoint cap keeps one slow endpoint from taking them all.
   * @default 10
   */
  readonly webhookMaxConcurrency: number;
  /**
   * Run the domain doctor daily (EventBridge schedule → a function that checks every sending domain's
   * DNS and SES status, as `npm run doctor` does) and alarm when a check that passed starts failing.
   * @default false
   */
  readonly doctorSchedule: boolean;
}

/** Settings as they may be given: `domain` or `domains` is required, numbers and lists may arrive as strings from `-c`. */
export type BatonConfigInput = { readonly [K in keyof BatonConfig]?: unknown };

/** Defaults, exported so documentation and tests can name them instead of repeating numbers. */
export const CONFIG_DEFAULTS = {
  retentionDays: 30,
  maxSendRate: 14,
  transactionalShare: 0.7,
  mailFromSubdomain: DEFAULT_MAIL_FROM_SUBDOMAIN,
  logRetentionDays: RetentionDays.ONE_MONTH,
  apiRateLimit: 50,
  apiBurstLimit: 100,
  sandbox: false,
  /** SES's sending rate for an account in the sandbox (one message per second). */
  sandboxMaxSendRate: 1,
  lambdaConcurrency: 1000,
  smtp: false,
  smtpMaxTasks: 4,
  webhookMaxConcurrency: 10,
  doctorSchedule: false,
} as const;

/** The fewest SMTP tasks: one per Availability Zone, so losing a zone or a task keeps the door open. */
export const SMTP_MIN_TASKS = 2;

/**
 * Sending domains one stack takes: each created identity adds four outputs (three DKIM records and
 * the MAIL FROM MX) and CloudFormation allows 200 per template, beside Baton's own dozen.
 */
export const MAX_SENDING_DOMAINS = 40;

/** A new AWS account's Lambda concurrent executions quota; the default settings fit in it. */
export const NEW_ACCOUNT_LAMBDA_CONCURRENCY = 10;

/** The context keys `configFromContext` reads, in the order a reader would look for them. */
export const CONTEXT_KEYS = [
  'domain',
  'domains',
  'importDomains',
  'sandbox',
  'sandboxRecipients',
  'lambdaConcurrency',
  'alarmEmail',
  'retentionDays',
  'maxSendRate',
  'transactionalShare',
  'mailFromSubdomain',
  'logRetentionDays',
  'apiRateLimit',
  'apiBurstLimit',
  'smtp',
  'smtpCertificateSecret',
  'smtpCertificateKey',
  'smtpHostname',
  'smtpMaxTasks',
  'webhookMaxConcurrency',
  'doctorSchedule',
] as const satisfies readonly (keyof BatonConfig)[];

/** Thrown for a setting that would produce a broken or unsafe deployment; the message says how to fix it. */
export class BatonConfigError extends Error {
  override readonly name = 'BatonConfigError';
  readonly setting: keyof BatonConfig;

  constructor(setting: keyof BatonConfig, problem: string, example: string) {
    super(`Invalid Baton setting "${setting}": ${problem}. Set it with \`npx cdk deploy -c ${example}\`.`);
    this.setting = setting;
  }
}

// RFC 1123 labels; the last label must not be all digits so an IP address is not taken for a domain.
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
// Deliberately narrow (dot-atom local part): the address only receives alarm mail from SNS.
const EMAIL_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** True for a fully qualified host name such as `mail.example.com` (lower case, at least two labels). */
export function isHostname(value: string): boolean {
  if (value.length > 253) return false;
  const labels = value.split('.');
  const tld = labels.at(-1) ?? '';
  return labels.length >= 2 && labels.every((label) => LABEL.test(label)) && !/^\d+$/.test(tld);
}

function isEmail(value: string): boolean {
  const at = value.lastIndexOf('@');
  if (at <= 0 || at > 64) return false;
  return EMAIL_LOCAL.test(value.slice(0, at)) && isHostname(value.slice(at + 1).toLowerCase());
}

const VALID_LOG_RETENTION = new Set<number>(
  Object.values(RetentionDays).filter((value): value is number => typeof value === 'number'),
);

/** `-c key=3` arrives as the string "3"; cdk.json gives a number. Anything else is not a number. */
function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '') return Number(value.trim());
  return Number.NaN;
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return String(value);
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

function numberSetting(
  setting: keyof BatonConfig,
  raw: unknown,
  fallback: number,
  rule: {
    readonly integer?: boolean;
    readonly min: number;
    readonly max: number;
    readonly exclusiveMin?: boolean;
  },
): number {
  // `-c maxSendRate=` (blank) means "use the default", like leaving the key out.
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '')) return fallback;
  const value = toNumber(raw);
  const belowMin = rule.exclusiveMin === true ? value <= rule.min : value < rule.min;
  if (
    !Number.isFinite(value) ||
    belowMin ||
    value > rule.max ||
    (rule.integer === true && !Number.isInteger(value))
  ) {
    const kind = rule.integer === true ? 'an integer' : 'a number';
    const range =
      rule.exclusiveMin === true
        ? `greater than ${rule.min} and at most ${rule.max}`
        : `between ${rule.min} and ${rule.max}`;
    throw new BatonConfigError(
      setting,
      `must be ${kind} ${range}, got ${JSON.stringify(raw)}`,
      `${setting}=${fallback}`,
    );
  }
  return value;
}

/**
 * Applies defaults and validates every setting, so a typo fails `cdk synth` with a message naming the
 * setting instead of failing a deployment half-way (or, worse, deploying a relay that cannot send).
 */
export function resolveConfig(input: BatonConfigInput): BatonConfig {
  const { domain, domains, importDomains } = sendingDomains(input);
  const sandbox = booleanSetting('sandbox', input.sandbox, CONFIG_DEFAULTS.sandbox);
  // An address keeps its local part as written (IAM compares the identity ARN as a string); only
  // domains are case-insensitive.
  const sandboxRecipients = listSetting('sandboxRecipients', input.sandboxRecipients, (item) => {
    const at = item.lastIndexOf('@');
    return at < 0 ? item.toLowerCase() : `${item.slice(0, at)}@${item.slice(at + 1).toLowerCase()}`;
  });
  if (sandboxRecipients.length > 0 && !sandbox) {
    throw new BatonConfigError(
      'sandboxRecipients',
      'lists recipients for an account in the SES sandbox, so it needs sandbox=true as well',
      'sandbox=true -c sandboxRecipients=you@example.org',
    );
  }
  for (const recipient of sandboxRecipients) {
    if (!isEmail(recipient) && !isHostname(recipient)) {
      throw new BatonConfigError(
        'sandboxRecipients',
        `${JSON.stringify(recipient)} is neither an email address nor a domain (each must be a verified SES identity)`,
        'sandboxRecipients=you@example.org,test.example.org',
      );
    }
  }

  const alarmEmail = text(input.alarmEmail);
  if (alarmEmail !== undefined && !isEmail(alarmEmail)) {
    throw new BatonConfigError(
      'alarmEmail',
      `${JSON.stringify(input.alarmEmail)} is not an email address`,
      'alarmEmail=ops@example.com',
    );
  }

  const mailFromSubdomain = (
    text(input.mailFromSubdomain) ?? CONFIG_DEFAULTS.mailFromSubdomain
  ).toLowerCase();
  // SES requires the MAIL FROM domain to be a subdomain of the identity; one label keeps the MX/SPF
  // records to publish obvious.
  if (!LABEL.test(mailFromSubdomain) || !domains.every((d) => isHostname(`${mailFromSubdomain}.${d}`))) {
    throw new BatonConfigError(
      'mailFromSubdomain',
      `${JSON.stringify(input.mailFromSubdomain)} must be a single DNS label such as "bounce"`,
      'mailFromSubdomain=bounce',
    );
  }

  const logRetentionDays = numberSetting(
    'logRetentionDays',
    input.logRetentionDays,
    CONFIG_DEFAULTS.logRetentionDays,
    {
      integer: true,
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
    },
  );
  if (!VALID_LOG_RETENTION.has(logRetentionDays)) {
    throw new BatonConfigError(
      'logRetentionDays',
      `${logRetentionDays} is not a retention CloudWatch Logs accepts (one of ${[...VALID_LOG_RETENTION].join(', ')})`,
      `logRetentionDays=${CONFIG_DEFAULTS.logRetentionDays}`,
    );
  }

  const apiRateLimit = numberSetting('apiRateLimit', input.apiRateLimit, CONFIG_DEFAULTS.apiRateLimit, {
    min: 0,
    max: 10_000,
    exclusiveMin: true,
  });
  const apiBurstLimit = numberSetting('apiBurstLimit', input.apiBurstLimit, CONFIG_DEFAULTS.apiBurstLimit, {
    integer: true,
    min: 1,
    max: 5_000,
  });

  const smtp = smtpSettings(input, domain);

  const config: BatonConfig = {
    domain,
    domains,
    importDomains,
    sandbox,
    sandboxRecipients,
    lambdaConcurrency: numberSetting(
      'lambdaConcurrency',
      input.lambdaConcurrency,
      CONFIG_DEFAULTS.lambdaConcurrency,
      { integer: true, min: NEW_ACCOUNT_LAMBDA_CONCURRENCY, max: 1_000_000 },
    ),
    alarmEmail,
    retentionDays: numberSetting('retentionDays', input.retentionDays, CONFIG_DEFAULTS.retentionDays, {
      integer: true,
      min: 1,
      max: 3650,
    }),
    // In the sandbox SES sends one message per second, whatever the production default would be.
    maxSendRate: numberSetting(
      'maxSendRate',
      input.maxSendRate,
      sandbox ? CONFIG_DEFAULTS.sandboxMaxSendRate : CONFIG_DEFAULTS.maxSendRate,
      {
        min: 0,
        max: 100_000,
        exclusiveMin: true,
      },
    ),
    transactionalShare: numberSetting(
      'transactionalShare',
      input.transactionalShare,
      CONFIG_DEFAULTS.transactionalShare,
      { min: 0.5, max: 0.95 },
    ),
    mailFromSubdomain,
    logRetentionDays: logRetentionDays as RetentionDays,
    apiRateLimit,
    apiBurstLimit,
    ...smtp,
    // Lambda's SQS event sources take 2 to 1000.
    webhookMaxConcurrency: numberSetting(
      'webhookMaxConcurrency',
      input.webhookMaxConcurrency,
      CONFIG_DEFAULTS.webhookMaxConcurrency,
      { integer: true, min: 2, max: 1000 },
    ),
    doctorSchedule: booleanSetting('doctorSchedule', input.doctorSchedule, CONFIG_DEFAULTS.doctorSchedule),
  };
  // Fails synth, naming what to request, rather than deploying consumers the account would throttle.
  eventSourceConcurrency(config);
  return config;
}

// A secret's name (Secrets Manager allows these characters) or its ARN, partial or complete.
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]{1,128}$/;

type SmtpSettings = Pick<
  BatonConfig,
  'smtp' | 'smtpCertificateSecret' | 'smtpCertificateKey' | 'smtpHostname' | 'smtpMaxTasks'
>;

/**
 * The SMTP front door's settings. Each of them needs `smtp=true`: a certificate or a task count given
 * to a stack without the service would be silently ignored, and the operator would wonder why port
 * 587 does not answer.
 */
function smtpSettings(input: BatonConfigInput, domain: string): SmtpSettings {
  const smtp = booleanSetting('smtp', input.smtp, CONFIG_DEFAULTS.smtp);
  const given = (
    ['smtpCertificateSecret', 'smtpCertificateKey', 'smtpHostname', 'smtpMaxTasks'] as const
  ).filter((setting) => text(input[setting]) !== undefined);
  if (!smtp && given.length > 0) {
    throw new BatonConfigError(
      given[0] ?? 'smtp',
      'configures the SMTP front door, which is off; turn it on with smtp=true as well',
      `smtp=true -c ${given[0] ?? 'smtpCertificateSecret'}=...`,
    );
  }
  const smtpCertificateSecret = text(input.smtpCertificateSecret);
  if (
    smtpCertificateSecret !== undefined &&
    !(
      SECRET_ARN.test(smtpCertificateSecret) ||
      (SECRET_NAME.test(smtpCertificateSecret) && !smtpCertificateSecret.startsWith('arn:'))
    )
  ) {
    throw new BatonConfigError(
      'smtpCertificateSecret',
      `${JSON.stringify(input.smtpCertificateSecret)} is neither a Secrets Manager secret name nor a secret ARN`,
      'smtp=true -c smtpCertificateSecret=baton/smtp-tls',
    );
  }
  const smtpCertificateKey = text(input.smtpCertificateKey);
  if (smtpCertificateKey !== undefined && smtpCertificateSecret === undefined) {
    throw new BatonConfigError(
      'smtpCertificateKey',
      'names the KMS key of the certificate secret, so it needs smtpCertificateSecret as well',
      'smtp=true -c smtpCertificateSecret=baton/smtp-tls -c smtpCertificateKey=arn:aws:kms:...',
    );
  }
  if (smtpCertificateKey !== undefined && !KMS_KEY_ARN.test(smtpCertificateKey)) {
    throw new BatonConfigError(
      'smtpCertificateKey',
      `${JSON.stringify(input.smtpCertificateKey)} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)`,
      'smtpCertificateKey=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    );
  }
  const smtpHostname = (text(input.smtpHostname) ?? `smtp.${domain}`).toLowerCase();
  if (!isHostname(smtpHostname)) {
    throw new BatonConfigError(
      'smtpHostname',
      `${JSON.stringify(input.smtpHostname)} is not a host name (expected something like smtp.example.com)`,
      `smtpHostname=smtp.${domain}`,
    );
  }
  const smtpMaxTasks = numberSetting('smtpMaxTasks', input.smtpMaxTasks, CONFIG_DEFAULTS.smtpMaxTasks, {
    integer: true,
    min: SMTP_MIN_TASKS,
    max: 100,
  });
  return { smtp, smtpCertificateSecret, smtpCertificateKey, smtpHostname, smtpMaxTasks };
}

/**
 * `domain` and `domains` → the primary domain and the list (primary first). `domains` wins when both
 * are given and must then contain `domain`, so the two can never name different identities.
 */
function sendingDomains(input: BatonConfigInput): Pick<BatonConfig, 'domain' | 'domains' | 'importDomains'> {
  const single = text(input.domain)?.toLowerCase();
  const listed = listSetting('domains', input.domains);
  if (single === undefined && listed.length === 0) {
    throw new BatonConfigError(
      'domain',
      'the SES sending domain is required (for example mail.example.com)',
      'domain=your.domain',
    );
  }
  for (const [setting, value] of [
    ...(single === undefined ? [] : [['domain', single] as const]),
    ...listed.map((d) => ['domains', d] as const),
  ]) {
    if (!isHostname(value)) {
      throw new BatonConfigError(
        setting,
        `${JSON.stringify(value)} is not a valid domain name (expected something like mail.example.com)`,
        setting === 'domain' ? 'domain=your.domain' : 'domains=mail.example.com,news.example.com',
      );
    }
  }
  if (single !== undefined && listed.length > 0 && !listed.includes(single)) {
    throw new BatonConfigError(
      'domains',
      `must contain domain ${JSON.stringify(single)} when both are given (domains wins; got ${listed.join(', ')})`,
      `domains=${[single, ...listed].join(',')}`,
    );
  }
  const domain = single ?? listed[0] ?? '';
  const domains = [domain, ...listed.filter((d) => d !== domain)];
  if (domains.length > MAX_SENDING_DOMAINS) {
    throw new BatonConfigError(
      'domains',
      `lists ${domains.length} domains, more than the ${MAX_SENDING_DOMAINS} one stack can publish the DNS records of ` +
        '(CloudFormation allows 200 outputs; each identity adds four). Subdomains need no entry of their own',
      'domains=mail.example.com,news.example.com',
    );
  }
  const importDomains = listSetting('importDomains', input.importDomains);
  const foreign = importDomains.filter((d) => !domains.includes(d));
  if (foreign.length > 0) {
    throw new BatonConfigError(
      'importDomains',
      `names ${foreign.join(', ')}, which ${foreign.length === 1 ? 'is' : 'are'} not among the sending domains (${domains.join(', ')})`,
      `domains=${[...domains, ...foreign].join(',')} -c importDomains=${importDomains.join(',')}`,
    );
  }
  return { domain, domains, importDomains };
}

/** `-c key=a,b` arrives as one string; cdk.json may give an array. Trimmed, lower-cased, no repeats. */
function listSetting(
  setting: keyof BatonConfig,
  raw: unknown,
  normalise: (item: string) => string = (item) => item.toLowerCase(),
): string[] {
  if (raw === undefined || raw === null) return [];
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : undefined;
  if (items === undefined || items.some((item) => typeof item !== 'string')) {
    throw new BatonConfigError(
      setting,
      `must be a comma-separated list, got ${JSON.stringify(raw)}`,
      `${setting}=a.example.com,b.example.com`,
    );
  }
  const values = (items as string[]).map((item) => normalise(item.trim())).filter((item) => item !== '');
  return [...new Set(values)];
}

function booleanSetting(setting: keyof BatonConfig, raw: unknown, fallback: boolean): boolean {
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '')) return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new BatonConfigError(setting, `must be true or false, got ${JSON.stringify(raw)}`, `${setting}=true`);
}

/** Reads the settings from CDK context (`cdk.json`, `-c key=value`) and validates them. */
export function configFromContext(node: Node): BatonConfig {
  const input: Record<string, unknown> = {};
  for (const key of CONTEXT_KEYS) input[key] = node.tryGetContext(key);
  return resolveConfig(input);
}

/**
 * How one lane may use SES: its sending rate, how many sender instances may run at once, and how
 * much work one invocation takes and has time for.
 */
export interface LaneSendPlan {
  readonly lane: Lane;
  /** Recipients per second the lane's sender function may use in total. */
  readonly sendRate: number;
  /** Event source mapping maximum concurrency (2..1000). */
  readonly maxConcurrency: number;
  /** Records per invocation: as many of the largest message as one instance can send in its timeout (1..10). */
  readonly batchSize: number;
  /** The sender's timeout: long enough for a whole batch of the largest message at its paced rate. */
  readonly timeoutSeconds: number;
}

/** Lambda's longest timeout. */
export const LAMBDA_MAX_TIMEOUT_SECONDS = 900;
/** The most records one sender invocation takes (SQS's batch without a batching window of minutes). */
export const SENDER_MAX_BATCH_SIZE = 10;
/** The shortest sender timeout: a fast lane keeps the 30 s it always had. */
export const SENDER_MIN_TIMEOUT_SECONDS = 30;
/**
 * Time one message costs besides its pacing wait: claim, MIME, the SES call and the status write, about
 * 0.1 s deployed (bench), with a tenfold margin.
 */
export const SEND_WORK_SECONDS = 1;
/**
 * Time an invocation needs besides its messages: init, the batch's payload and suppression reads and
 * the statistics flush, and the reserve the sender keeps before its deadline (DEADLINE_RESERVE_MS).
 */
export const INVOCATION_RESERVE_SECONDS = 5 + DEADLINE_RESERVE_MS / 1000;

/**
 * Sends one sender instance is paced to. Each message costs a claim write, MIME building (about
 * 1 ms of CPU, bench cpu section), the SES call (the slow part, tens of ms) and a status write, with
 * the suppression read shared by the batch: roughly 80-100 ms deployed, where SES signs (Easy
 * DKIM). An instance paced slower than it can send spends the difference asleep, billed: at 4/s
 * that sleep was a sixth of Baton's cost per message (bench cost section), so 8.
 */
export const SENDS_PER_SENDER_INSTANCE = 8;

/**
 * Splits `maxSendRate` between the lanes and sizes each lane's concurrency to its rate.
 *
 * Concurrency is capped (rather than left to scale with queue depth) because instances beyond
 * `rate / SENDS_PER_SENDER_INSTANCE` would only be throttled by SES and burn receive counts towards
 * the DLQ. Lambda's minimum is 2; transactional gets the larger share, so it also gets at least as
 * many pollers as broadcast and keeps its rate while a campaign drains.
 */
export function laneSendPlans(
  config: Pick<BatonConfig, 'maxSendRate' | 'transactionalShare'>,
): readonly LaneSendPlan[] {
  const share: Record<Lane, number> = {
    transactional: config.transactionalShare,
    broadcast: 1 - config.transactionalShare,
  };
  return LANES.map((lane) => {
    const sendRate = floor3(config.maxSendRate * share[lane]);
    const maxConcurrency = Math.min(1000, Math.max(2, Math.ceil(sendRate / SENDS_PER_SENDER_INSTANCE)));
    return { lane, sendRate, maxConcurrency, ...invocationSize(lane, sendRate / maxConcurrency) };
  });
}

/**
 * Batch size and timeout for a sender paced at `instanceRate` recipients per second. In the worst
 * case every record is a message to {@link MAX_RECIPIENTS}, and each costs the longer of the pacer's
 * two rules (lambdas/domain/delivery/pacer.ts): MAX_RECIPIENTS / rate, or, where whole messages pack
 * unevenly into the 60 s window's budget (2.1/s gives 126: two of 50, not 2.5), 60 s divided by how
 * many fit. The first message counts too, and may wait longer than that: a warm instance's last sends
 * still fill its window, and smaller messages pack into it worse than 50s (at 1.75/s, 105 a window,
 * a sender that just sent 6 and 50 recipients waits 60 s for its next 50, not 30). Whatever it sent
 * before, no window holds any of it once 60 s have passed, so the batch runs at most one window later
 * than it would from an idle sender: that window is added where it is longer than one message's pace.
 * The batch is as many such messages as fit in Lambda's 900 s, at most 10; the timeout is what that
 * batch needs, at least 30 s. A sender that took a batch it could not send in time would time out
 * and return records it never reached, each receive bringing them closer to the dead-letter queue.
 */
function invocationSize(lane: Lane, instanceRate: number): { batchSize: number; timeoutSeconds: number } {
  const windowSeconds = PACING_WINDOW_MS / 1000;
  const windowBudget = instanceRate * windowSeconds;
  const perWindow = Math.floor(windowBudget / MAX_RECIPIENTS + 1e-9);
  const paced = MAX_RECIPIENTS / instanceRate;
  // A message larger than the window's budget goes alone and costs exactly its own pace.
  const pacing = perWindow >= 1 ? Math.max(paced, windowSeconds / perWindow) : paced;
  const perMessage = pacing + SEND_WORK_SECONDS;
  // What the instance sent before the batch delays it by at most one window (beyond a message's pace).
  const history = Math.max(0, windowSeconds - pacing);
  const batchSize = Math.min(
    SENDER_MAX_BATCH_SIZE,
    Math.floor((LAMBDA_MAX_TIMEOUT_SECONDS - INVOCATION_RESERVE_SECONDS - history) / perMessage),
  );
  if (batchSize < 1) {
    throw new BatonConfigError(
      'maxSendRate',
      `the ${lane} lane's share gives each of its senders ${floor3(instanceRate)} recipients per second, ` +
        `too slow to send one ${MAX_RECIPIENTS}-recipient message within Lambda's ${LAMBDA_MAX_TIMEOUT_SECONDS} s ` +
        '(raise maxSendRate, or move transactionalShare towards one half)',
      `maxSendRate=${CONFIG_DEFAULTS.maxSendRate}`,
    );
  }
  const timeoutSeconds = Math.max(
    SENDER_MIN_TIMEOUT_SECONDS,
    Math.ceil(batchSize * perMessage + history + INVOCATION_RESERVE_SECONDS),
  );
  return { batchSize, timeoutSeconds };
}

// Rounded down so the lanes' rates never add up to more than the account's.
function floor3(value: number): number {
  return Math.floor(value * 1000 + 1e-9) / 1000;
}

/** The Lambda concurrency Baton's event sources may take at most, and what is left for the api. */
export interface ConcurrencyPlan {
  readonly lanes: Readonly<Record<Lane, number>>;
  readonly feedback: number;
  readonly erasure: number;
  /** The webhook delivery function's cap (`webhookMaxConcurrency`). */
  readonly webhooks: number;
  /** Sum of the event sources' caps. */
  readonly eventSources: number;
  /** Concurrency always left for the api function (and anything else in the account). */
  readonly apiReserve: number;
}

/**
 * Concurrency kept free for the api function beyond the consumers' caps: with two instances a
 * request burst is answered while every consumer runs flat out.
 */
export const API_CONCURRENCY_RESERVE = 2;

/**
 * SES events the feedback function applies per second and instance: each is a few DynamoDB writes
 * of about 10 ms (bench feedback section), so 20 keeps a margin.
 */
export const FEEDBACK_EVENTS_PER_INSTANCE = 20;

/** Events per message sent that feedback applies in the usual case: Send, then Delivery. */
export const FEEDBACK_EVENTS_PER_MESSAGE = 2;

/** The erasure worker's cap: erasures are rare, and two workers finish any backlog in minutes. */
export const ERASURE_CONCURRENCY = 2;

/**
 * Sizes the feedback function's cap from the send rate like the lanes' (Lambda's minimum is 2), and
 * checks that every event source's cap plus the api's reserve fit in `lambdaConcurrency`. They must:
 * an SQS event source the account throttles hands its batch back, and each such return counts a
 * receive towards the dead-letter queue. The defaults (maxSendRate 14, webhookMaxConcurrency 10)
 * need 18 + 2: more than a new account's quota of 10, which even the least settings (2 per consumer,
 * 10 + 2) exceed since webhook delivery (issue 14) became a consumer of its own.
 */
export function eventSourceConcurrency(
  config: Pick<
    BatonConfig,
    'maxSendRate' | 'transactionalShare' | 'lambdaConcurrency' | 'webhookMaxConcurrency'
  >,
): ConcurrencyPlan {
  const plans = laneSendPlans(config);
  const lanes = Object.fromEntries(plans.map((plan) => [plan.lane, plan.maxConcurrency])) as Record<
    Lane,
    number
  >;
  const feedback = Math.min(
    1000,
    Math.max(2, Math.ceil((config.maxSendRate * FEEDBACK_EVENTS_PER_MESSAGE) / FEEDBACK_EVENTS_PER_INSTANCE)),
  );
  const erasure = ERASURE_CONCURRENCY;
  const webhooks = config.webhookMaxConcurrency;
  const eventSources =
    plans.reduce((sum, plan) => sum + plan.maxConcurrency, 0) + feedback + erasure + webhooks;
  const needed = eventSources + API_CONCURRENCY_RESERVE;
  if (needed > config.lambdaConcurrency) {
    throw new BatonConfigError(
      'lambdaConcurrency',
      `maxSendRate ${config.maxSendRate} and webhookMaxConcurrency ${webhooks} need up to ${eventSources} ` +
        'concurrent Lambda executions for the queue ' +
        `consumers plus ${API_CONCURRENCY_RESERVE} for the api (${needed}), more than the account's ` +
        `${config.lambdaConcurrency}. Request an increase of "Concurrent executions" (Service Quotas, AWS ` +
        `Lambda) to at least ${needed} and set lambdaConcurrency to the granted value, or lower maxSendRate or webhookMaxConcurrency`,
      `lambdaConcurrency=${Math.max(needed, 1000)}`,
    );
  }
  return { lanes, feedback, erasure, webhooks, eventSources, apiReserve: API_CONCURRENCY_RESERVE };
}
