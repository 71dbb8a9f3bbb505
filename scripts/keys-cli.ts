/**
 * `npm run keys`: the command line as data. Parsing is a pure function of argv and the
 * environment, and each command runs against a store handed in, so both are unit-tested without
 * a database; `keys.ts` only wires them to a real target.
 */
import { parseArgs } from 'node:util';
import type { GuardDecision } from '../lambdas/domain/guard/evaluate.ts';
import { holdFor, suspendedByGuard, throttleFor } from '../lambdas/domain/guard/state.ts';
import {
  type ApiKey,
  type ApiKeySpecInput,
  type ApiKeySummary,
  issueKey,
  KEY_ID,
  type KeyStatus,
  summarise,
  validateKeySpec,
} from '../lambdas/domain/keys/api-key.ts';
import { MAX_KEY_CACHE_SECONDS } from '../lambdas/domain/keys/key-cache.ts';
import { ApiKeyLockedError, RelayNetworksOverlapError, wideNetworks } from '../lambdas/domain/keys/relay.ts';
import { UncoveredDomainError, uncoveredDomains } from '../lambdas/domain/keys/sending-domains.ts';

/** Exit codes: 2 for a command line that cannot be run as typed, 1 for a failure while running it. */
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/** The command line is wrong: says what and how to fix it; exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Running the command failed (no such key, no local mode, no stack): exits 1. */
export class CommandFailedError extends Error {
  override readonly name = 'CommandFailedError';
}

export const DEFAULT_STACK = 'Baton';
export const DEFAULT_STATE_DIR = '.baton';

/** Where the keys live: a running local mode (its state folder), or a deployed stack. */
export type TargetChoice =
  | {
      readonly kind: 'local';
      readonly stateDir: string;
      /** Asked for with --local or --state-dir (rather than picked because nothing else was). */
      readonly explicit: boolean;
    }
  | { readonly kind: 'stack'; readonly stack: string; readonly region?: string };

export type KeysCommand =
  | { readonly command: 'help' }
  | { readonly command: 'create'; readonly target: TargetChoice; readonly spec: ApiKeySpecInput }
  | { readonly command: 'list'; readonly target: TargetChoice }
  | {
      readonly command: 'show' | 'suspend' | 'resume' | 'revoke';
      readonly target: TargetChoice;
      readonly keyId: string;
    };

export const USAGE = `Manage Baton API keys, in local mode or in a deployed stack.

Usage: npm run keys -- <command> [options]

Commands:
  create --tenant T --domains a.com,b.com [options]
                         create a key and print it once (stdout; details on stderr)
      --scopes LIST      send, read, suppressions, admin, webhooks (default: send,read); admin lifts
                         bounces and complaints, which hold for every tenant: operators only
      --cidrs LIST       source addresses allowed, e.g. 10.0.0.0/8,2001:db8::/32 (default: any)
      --policy P         reject (default) or rewrite a From outside the domains
      --default-from A   with --policy rewrite: the verified address used instead
      --daily-quota N    messages per UTC day (default: unlimited)
      --rate-limit N     requests per second (default: unlimited)
      --name TEXT        what the key is for
      --smtp-without-auth
                         SMTP relays for the --cidrs networks without AUTH, as a classic relay
                         allowlist (needs --cidrs and the send scope); refused when they overlap
                         the networks of another no-AUTH key that is not revoked, so that a
                         connection is one key
  list                   all keys: id, tenant, name, status, scopes, domains, SMTP (never secrets)
  show <keyId>           one key's settings
  suspend <keyId>        stop the key working (reversible with resume)
  resume <keyId>         make a suspended key work again
  revoke <keyId>         stop the key working for good

Target (where the ApiKeys table is):
  --local                local mode (the default while it runs): reads <state-dir>/local.json
  --state-dir DIR        local mode's state folder (default: $BATON_STATE_DIR or .baton)
  --stack NAME           a deployed stack (default name: ${DEFAULT_STACK}); the table comes from its
                         ApiKeysTableName output, credentials from the default AWS chain
  --region R             the stack's region (default: the AWS chain's, e.g. AWS_REGION)
  -h, --help             this text

A suspended or revoked key stops working within ${MAX_KEY_CACHE_SECONDS} s: the api function and the SMTP server cache keys.`;

/** Help and the target flags (see `targetOf`), shared with `npm run guard` (guard-cli.ts). */
export const TARGET_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  local: { type: 'boolean' },
  'state-dir': { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
} as const;

const OPTIONS = {
  ...TARGET_OPTIONS,
  tenant: { type: 'string' },
  domains: { type: 'string' },
  scopes: { type: 'string' },
  cidrs: { type: 'string' },
  policy: { type: 'string' },
  'default-from': { type: 'string' },
  'daily-quota': { type: 'string' },
  'rate-limit': { type: 'string' },
  name: { type: 'string' },
  'smtp-without-auth': { type: 'boolean' },
} as const;

const CREATE_ONLY = [
  'tenant',
  'domains',
  'scopes',
  'cidrs',
  'policy',
  'default-from',
  'daily-quota',
  'rate-limit',
  'name',
  'smtp-without-auth',
] as const;

const KEY_COMMANDS = ['show', 'suspend', 'resume', 'revoke'] as const;

/** Which flag a field of the key spec came from, to word validation errors in the user's terms. */
const FLAG_OF: Readonly<Record<string, string>> = {
  tenant: '--tenant',
  name: '--name',
  scopes: '--scopes',
  allowedDomains: '--domains',
  allowedCidrs: '--cidrs',
  senderPolicy: '--policy',
  defaultFrom: '--default-from',
  dailyQuota: '--daily-quota',
  rateLimit: '--rate-limit',
  smtpWithoutAuth: '--smtp-without-auth',
};

/** Parses `argv` (without `node keys.ts`). Throws UsageError with the reason in words. */
export function parseKeysArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): KeysCommand {
  const parsed = commandLine(argv, parse);
  if (parsed === undefined) return { command: 'help' };
  const { values, positionals } = parsed;

  const [command, ...rest] = positionals;
  if (command === undefined)
    throw new UsageError('Name a command: create, list, show, suspend, resume or revoke.');

  if (command !== 'create') {
    const misplaced = CREATE_ONLY.find((o) => values[o] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} applies only to create.`);
  }
  const target = targetOf(values, env);

  if (command === 'create') {
    if (rest.length > 0) throw new UsageError(`create takes options only; unexpected "${rest[0]}".`);
    return { command, target, spec: specOf(values) };
  }
  if (command === 'list') {
    if (rest.length > 0) throw new UsageError(`list takes no arguments; unexpected "${rest[0]}".`);
    return { command, target };
  }
  if ((KEY_COMMANDS as readonly string[]).includes(command)) {
    const keyCommand = command as (typeof KEY_COMMANDS)[number];
    const [keyId, extra] = rest;
    if (keyId === undefined)
      throw new UsageError(`${command} needs a key id: npm run keys -- ${command} <keyId>.`);
    if (extra !== undefined) throw new UsageError(`${command} takes one key id; unexpected "${extra}".`);
    if (keyId.startsWith('bt_')) {
      throw new UsageError(
        `That looks like a whole API key. Pass only its id (the part between "bt_" and the next "_"), so the secret stays out of your shell history.`,
      );
    }
    if (!KEY_ID.test(keyId)) {
      throw new UsageError(`"${keyId}" is not a key id (8-32 lower-case letters and digits, as list shows).`);
    }
    return { command: keyCommand, target, keyId };
  }
  throw new UsageError(`Unknown command "${command}"; use create, list, show, suspend, resume or revoke.`);
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
}

/**
 * Parses `argv` with `parse` (a CLI's parseArgs call, with tokens), in words: undefined when help is
 * asked for (`--help`, `-h` or `help`); a UsageError for what parseArgs refuses or an option given
 * twice. Shared with `npm run guard` (guard-cli.ts).
 */
export function commandLine<
  T extends {
    readonly values: { readonly help?: boolean | undefined };
    readonly positionals: string[];
    readonly tokens: ReadonlyArray<{ kind: string; name?: string }>;
  },
>(argv: readonly string[], parse: (argv: readonly string[]) => T): T | undefined {
  let parsed: T;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]}`, { cause: error });
  }
  if (parsed.values.help || parsed.positionals[0] === 'help') return undefined;
  const repeated = repeatedOption(parsed.tokens);
  if (repeated) throw new UsageError(`--${repeated} is given more than once; give it once.`);
  return parsed;
}

function repeatedOption(tokens: ReadonlyArray<{ kind: string; name?: string }>): string | undefined {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option' || t.name === undefined) continue;
    if (seen.has(t.name)) return t.name;
    seen.add(t.name);
  }
  return undefined;
}

type Values = ReturnType<typeof parse>['values'];

/** The target flags, shared with `npm run guard` (guard-cli.ts). */
export interface TargetFlags {
  readonly local?: boolean;
  readonly 'state-dir'?: string;
  readonly stack?: string;
  readonly region?: string;
}

export function targetOf(values: TargetFlags, env: NodeJS.ProcessEnv): TargetChoice {
  const deployed = values.stack !== undefined || values.region !== undefined;
  if (deployed && values.local) throw new UsageError('Choose one target: --local or --stack, not both.');
  if (deployed && values['state-dir'] !== undefined) {
    throw new UsageError(
      '--state-dir belongs to local mode; it cannot be combined with --stack or --region.',
    );
  }
  if (deployed) {
    const stack = values.stack ?? DEFAULT_STACK;
    if (stack.trim() === '') throw new UsageError('--stack needs a stack name.');
    return { kind: 'stack', stack, ...(values.region !== undefined ? { region: values.region } : {}) };
  }
  const stateDir = values['state-dir'] ?? (env.BATON_STATE_DIR?.trim() || DEFAULT_STATE_DIR);
  return { kind: 'local', stateDir, explicit: values.local === true || values['state-dir'] !== undefined };
}

function specOf(values: Values): ApiKeySpecInput {
  const list = (raw: string | undefined): string[] | undefined =>
    raw === undefined
      ? undefined
      : raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  const count = (flag: 'daily-quota' | 'rate-limit'): number | undefined => {
    const raw = values[flag];
    if (raw === undefined) return undefined;
    if (!/^[0-9]+$/.test(raw.trim()))
      throw new UsageError(`--${flag} must be a positive whole number, got "${raw}".`);
    return Number(raw.trim());
  };
  const input: ApiKeySpecInput = {
    ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    ...(values.name !== undefined ? { name: values.name } : {}),
    ...(values.scopes !== undefined ? { scopes: list(values.scopes) } : {}),
    ...(values.domains !== undefined ? { allowedDomains: list(values.domains) } : {}),
    ...(values.cidrs !== undefined ? { allowedCidrs: list(values.cidrs) } : {}),
    ...(values.policy !== undefined ? { senderPolicy: values.policy } : {}),
    ...(values['default-from'] !== undefined ? { defaultFrom: values['default-from'] } : {}),
    ...(values['daily-quota'] !== undefined ? { dailyQuota: count('daily-quota') } : {}),
    ...(values['rate-limit'] !== undefined ? { rateLimit: count('rate-limit') } : {}),
    ...(values['smtp-without-auth'] === true ? { smtpWithoutAuth: true } : {}),
  };
  // Checked here too, so a bad flag is a usage error (exit 2) before any table is touched.
  const checked = validateKeySpec(input);
  if (!checked.ok) {
    const lines = checked.errors.map((e) => {
      const field = e.path.replace(/\[.*$/, '');
      return `  ${FLAG_OF[field] ?? field}: ${e.message}`;
    });
    throw new UsageError(`The key cannot be created as asked:\n${lines.join('\n')}`);
  }
  return input;
}

/** What the commands need from the ApiKeys table (DynamoApiKeyStore has it, deployed or local). */
export interface KeyAdmin {
  get(keyId: string): Promise<ApiKey | undefined>;
  /**
   * Writes a new key. Throws RelayNetworksOverlapError for a no-AUTH key whose networks another
   * one's overlap, ApiKeyLockedError while another such creation holds the lock too long.
   */
  create(key: ApiKey): Promise<void>;
  list(): Promise<ApiKeySummary[]>;
  setStatus(
    keyId: string,
    status: KeyStatus,
    now?: Date,
  ): Promise<{ previous: KeyStatus; key: ApiKeySummary }>;
}

/** Where a command runs: the key table, and what the deployment behind it can send from. */
export interface KeysTarget {
  readonly store: KeyAdmin;
  /** For messages: "local mode at http://127.0.0.1:3000" or "stack Baton (eu-west-1)". */
  readonly description: string;
  /**
   * The SES identities the deployment sends from (a stack's SendingDomains output, local mode's
   * BATON_SENDING_DOMAINS); undefined when the deployment does not say (one deployed before it did).
   */
  readonly sendingDomains: readonly string[] | undefined;
  /** How a sending domain is added to that deployment, for the refusal's message. */
  readonly howToAddDomain: string;
}

export interface Output {
  /** Results a script may capture (the new key, tables). */
  out(text: string): void;
  /** Messages for the person at the terminal. */
  err(text: string): void;
}

/** Runs one command. Errors propagate: `keys.ts` turns them into words and an exit code. */
export async function runKeysCommand(
  command: Exclude<KeysCommand, { command: 'help' }>,
  target: KeysTarget,
  io: Output,
  now: () => Date = () => new Date(),
): Promise<void> {
  const { store } = target;
  switch (command.command) {
    case 'create': {
      const checked = validateKeySpec(command.spec);
      if (!checked.ok) throw new UsageError(checked.errors.map((e) => `${e.path}: ${e.message}`).join('; '));
      assertTargetCovers(target, checked.value.allowedDomains);
      const { key, token } = issueKey(checked.value, now());
      await createIn(store, key);
      io.err(
        `Created API key ${key.keyId} for tenant ${key.tenant} (scopes ${key.scopes.join(', ')}; sends from ${key.allowedDomains.join(', ')}).\n` +
          (key.smtpWithoutAuth
            ? `Over SMTP it relays without AUTH for ${key.allowedCidrs.join(', ')}: anything that can connect from there sends as this key.\n`
            : '') +
          'Store the key below now: it is shown this once, and Baton keeps only its SHA-256.',
      );
      const wide = key.smtpWithoutAuth ? wideNetworks(key.allowedCidrs) : [];
      if (wide.length > 0) {
        io.err(
          `Warning: ${wide.join(', ')} ${wide.length === 1 ? 'is' : 'are'} wider than a /8 (IPv4) or /32 (IPv6). ` +
            'Anything there that can reach the SMTP port sends as this key without AUTH: close to an open relay ' +
            `for ${key.allowedDomains.join(', ')}. Revoke the key and narrow --cidrs unless that is meant.`,
        );
      }
      io.out(token);
      return;
    }
    case 'list': {
      const keys = await store.list();
      if (keys.length === 0) {
        io.err('No API keys yet; create one with: npm run keys -- create --tenant T --domains example.com');
        return;
      }
      io.out(keyTable(keys));
      // Keys made before the check (or by hand) may name domains SES will refuse: say which.
      const covered = target.sendingDomains;
      if (covered === undefined) return;
      for (const key of keys) {
        const uncovered = uncoveredDomains(key.allowedDomains, covered);
        if (uncovered.length === 0 || key.status === 'revoked') continue;
        io.err(
          `Key ${key.keyId} (tenant ${key.tenant}) names ${uncovered.join(', ')}, which ${target.description} ` +
            `does not send from (${covered.join(', ')}): mail from ${uncovered.length === 1 ? 'it' : 'them'} fails at SES.`,
        );
      }
      return;
    }
    case 'show': {
      const key = await store.get(command.keyId);
      if (!key) throw new CommandFailedError(`No API key has the id ${command.keyId}.`);
      io.out(keyDetails(summarise(key), now()));
      return;
    }
    case 'suspend':
    case 'resume':
    case 'revoke': {
      const status: KeyStatus =
        command.command === 'suspend' ? 'suspended' : command.command === 'resume' ? 'active' : 'revoked';
      const { previous, key } = await store.setStatus(command.keyId, status, now());
      io.err(statusMessage(key, previous, status));
      return;
    }
  }
}

/** The store's refusals, in the user's terms: an overlap is the command line's (--cidrs). */
async function createIn(store: KeyAdmin, key: ApiKey): Promise<void> {
  try {
    await store.create(key);
  } catch (error) {
    if (error instanceof RelayNetworksOverlapError) {
      throw new UsageError(`--cidrs: ${error.message}`, { cause: error });
    }
    if (error instanceof ApiKeyLockedError) {
      throw new CommandFailedError(`The key was not created: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * A key may name only domains the deployment can send from: any other would be answered 202 and
 * then fail at SES with AccessDenied. Checked before anything is written.
 */
function assertTargetCovers(target: KeysTarget, domains: readonly string[]): void {
  if (target.sendingDomains === undefined) {
    throw new CommandFailedError(
      `${target.description} does not say which domains it can send from (no SendingDomains); ` +
        'deploy this version of Baton (or restart local mode) first, so keys can be checked against them.',
    );
  }
  const uncovered = uncoveredDomains(domains, target.sendingDomains);
  if (uncovered.length > 0) {
    const error = new UncoveredDomainError(
      uncovered,
      target.sendingDomains,
      target.description,
      target.howToAddDomain,
    );
    throw new UsageError(`--domains: ${error.message}`, { cause: error });
  }
}

function statusMessage(key: ApiKeySummary, previous: KeyStatus, status: KeyStatus): string {
  const which = `Key ${key.keyId} (tenant ${key.tenant})`;
  if (previous === status) return `${which} was already ${status}; nothing changed.`;
  const bound = `within ${MAX_KEY_CACHE_SECONDS} s (the api function caches key lookups)`;
  switch (status) {
    case 'suspended':
      return `${which} is suspended: requests with it are refused (403) ${bound}. Undo with resume.`;
    case 'active':
      return `${which} is active again: requests with it are accepted ${bound}.`;
    case 'revoked':
      return `${which} is revoked for good: requests with it are refused (401) ${bound}.`;
  }
}

const MAX_CELL = 40;

/** Columns sized to their content; long cells (names, domain lists) are shortened with "…". */
export function keyTable(keys: readonly ApiKeySummary[]): string {
  const header = ['KEY ID', 'TENANT', 'NAME', 'STATUS', 'SCOPES', 'DOMAINS', 'SMTP'];
  const rows = keys.map((k) => [
    k.keyId,
    k.tenant,
    k.name ?? '',
    k.status,
    k.scopes.join(','),
    k.allowedDomains.join(','),
    !k.scopes.includes('send') ? '-' : k.smtpWithoutAuth ? 'no AUTH' : 'AUTH',
  ]);
  return columns([header, ...rows], MAX_CELL);
}

/** Rows as columns sized to their content; cells longer than `maxCell` are shortened with "…". */
export function columns(rows: ReadonlyArray<readonly string[]>, maxCell: number): string {
  const cells = rows.map((row) => row.map((c) => (c.length > maxCell ? `${c.slice(0, maxCell - 1)}…` : c)));
  const widths = (cells[0] ?? []).map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function smtpMode(key: ApiKeySummary): string {
  if (!key.scopes.includes('send')) return 'cannot send (no send scope)';
  return key.smtpWithoutAuth ? `without AUTH from ${key.allowedCidrs.join(', ')}` : 'AUTH required';
}

/**
 * The abuse guard's hand on the key, when it has one: why the guard suspended or throttled it, or
 * holds its tenant's mail, with the figures it decided on (docs/guard.md).
 */
function guardLines(key: ApiKeySummary, now: Date): Array<[string, string]> {
  const lines: Array<[string, string]> = [];
  const suspension = suspendedByGuard(key);
  if (suspension) {
    lines.push(['Guard', `suspended by the abuse guard: ${suspension.reason}`]);
    lines.push(['Guard figures', guardFigures(suspension)]);
    lines.push([
      'Resume with',
      `npm run guard -- resume --key ${key.keyId} --reason "..." (once the cause is found)`,
    ]);
  }
  const throttle = throttleFor(key.guard, now);
  if (throttle) {
    lines.push(['Guard', `throttled until ${throttle.until ?? '?'}: ${throttle.reason}`]);
    lines.push(['Guard figures', guardFigures(throttle)]);
  }
  const hold = holdFor(key.guard, 'broadcast', now);
  if (hold) {
    const what =
      hold.action === 'holdAll' ? "all of the tenant's mail is held" : "the tenant's broadcast mail is held";
    lines.push(['Tenant guard', `${what}: ${hold.reason}`]);
    lines.push(['Tenant figures', guardFigures(hold)]);
  }
  return lines;
}

/** "suppressedHitRate 18 % (threshold 15 %), 11 of 60 attempts, 2025-03-01T11:00:00.000Z to ... (1 h)" */
export function guardFigures(d: GuardDecision): string {
  const percent = (x: number) => `${Number((x * 100).toFixed(2))} %`;
  const measured =
    d.signal === 'volumeSpike'
      ? `${d.rate} sends this hour (threshold ${d.threshold}), ${d.sample.events} to new recipient domains`
      : `${percent(d.rate)} (threshold ${percent(d.threshold)}), ${d.sample.events} of ${d.sample.sends} ${d.sample.over}`;
  return (
    `${d.signal} ${measured}, window ${d.window.from} to ${d.window.to} (${d.window.hours} h)` +
    `${d.probation ? ', on probation' : ''}, decided ${d.decidedAt}`
  );
}

export function keyDetails(key: ApiKeySummary, now: Date = new Date()): string {
  const lines: Array<[string, string]> = [
    ['Key ID', key.keyId],
    ['Tenant', key.tenant],
    ['Name', key.name ?? '(none)'],
    ['Status', key.status],
    ['Scopes', key.scopes.join(', ')],
    ['Domains', key.allowedDomains.join(', ')],
    ['Source CIDRs', key.allowedCidrs.length > 0 ? key.allowedCidrs.join(', ') : 'any'],
    ['SMTP', smtpMode(key)],
    [
      'Sender policy',
      key.senderPolicy === 'rewrite' ? `rewrite to ${key.defaultFrom ?? '(no default From!)'}` : 'reject',
    ],
    ['Daily quota', key.dailyQuota === undefined ? 'unlimited' : `${key.dailyQuota} messages`],
    ['Rate limit', key.rateLimit === undefined ? 'unlimited' : `${key.rateLimit} requests/s`],
    ['Created', key.createdAt],
    ['Updated', key.updatedAt ?? '-'],
    ...guardLines(key, now),
  ];
  const width = Math.max(...lines.map(([label]) => label.length));
  return lines.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}
