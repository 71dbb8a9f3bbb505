/**
 * `npm run guard`: the abuse guard's operator commands as data. Parsing is a pure function of argv
 * and the environment, and each command runs against ports handed in, so both are unit-tested
 * without a database; `guard.ts` only wires them to a real target (local mode or a stack, found as
 * `npm run keys` finds them).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  cancelHeld,
  DEFAULT_RELEASE_RATE,
  type GuardOperationsDeps,
  type HeldListing,
  type HeldResult,
  listHeld,
  releaseHeld,
  resumeGuard,
  setGuardPolicy,
} from '../lambdas/domain/guard/operations.ts';
import {
  type GuardPolicy,
  GuardPolicyError,
  type GuardPolicyOverride,
} from '../lambdas/domain/guard/policy.ts';
import {
  type HeldRequest,
  heldQuery,
  heldRequest,
  type ResumeRequest,
  resumeRequest,
} from '../lambdas/domain/guard/requests.ts';
import { MAX_KEY_CACHE_SECONDS } from '../lambdas/domain/keys/key-cache.ts';
import type { GuardStateStore } from '../lambdas/domain/ports.ts';
import { ProblemError } from '../lambdas/domain/problem.ts';
import type { Lane } from '../lambdas/shared/names.ts';
import {
  CommandFailedError,
  columns,
  commandLine,
  DEFAULT_STACK,
  type Output,
  TARGET_OPTIONS,
  type TargetChoice,
  targetOf,
  UsageError,
} from './keys-cli.ts';

export type GuardCommand =
  | { readonly command: 'help' }
  | { readonly command: 'held'; readonly target: TargetChoice; readonly tenant: string; readonly lane?: Lane }
  | {
      readonly command: 'release';
      readonly target: TargetChoice;
      readonly request: HeldRequest;
      /** Recipients per second per lane. */
      readonly rate: number;
    }
  | { readonly command: 'cancel'; readonly target: TargetChoice; readonly request: HeldRequest }
  | { readonly command: 'resume'; readonly target: TargetChoice; readonly request: ResumeRequest }
  | {
      readonly command: 'policy';
      readonly target: TargetChoice;
      readonly tenant: string;
      /** Absent: show. `null`: clear the override. An object: set it. */
      readonly override?: GuardPolicyOverride | null;
    };

export const GUARD_USAGE = `Operate Baton's abuse guard: held mail, release, cancel, resume. Operators only.

Usage: npm run guard -- <command> [options]

Commands:
  held --tenant T [--lane L]
                         the tenant's held mail, oldest first (id, lane, key, since, until, why)
  release --tenant T (--ids A,B | --lane L | --all) --reason TEXT [--rate N]
                         send held mail: each message queued again, at most N recipients per
                         second per lane (default ${DEFAULT_RELEASE_RATE}; keep it at or under the lane's rate). Refused
                         per message while its hold still applies: resume first. A hold older
                         than 7 days has expired: the message is failed instead
  cancel --tenant T (--ids A,B | --lane L | --all) --reason TEXT
                         fail held mail for good ("cancelled by an operator: TEXT")
  resume (--tenant T | --key KEYID) --reason TEXT
                         lift the guard's pause, hold, suspension or throttle: the window restarts
                         now and probation (half thresholds) follows
  policy --tenant T [--set JSON | --clear]
                         show, set or clear the tenant's policy override (docs/guard.md), e.g.
                         --set '{"tenantHardBounce": {"minimumSends": 2000}}'; checked against the
                         defaults before it is written, applied from the tenant's next evaluation

The sender checks suppressions before each send, so released mail to an address suppressed
meanwhile is not sent. A release that stops half-way is finished by running it again: nothing is
sent twice.

Target (as for npm run keys):
  --local                local mode (the default while it runs): reads <state-dir>/local.json
  --state-dir DIR        local mode's state folder (default: $BATON_STATE_DIR or .baton)
  --stack NAME           a deployed stack (default name: ${DEFAULT_STACK}), credentials from the AWS chain
  --region R             the stack's region
  -h, --help             this text`;

const OPTIONS = {
  ...TARGET_OPTIONS,
  tenant: { type: 'string' },
  key: { type: 'string' },
  ids: { type: 'string' },
  lane: { type: 'string' },
  all: { type: 'boolean' },
  reason: { type: 'string' },
  rate: { type: 'string' },
  set: { type: 'string' },
  clear: { type: 'boolean' },
} as const;

/** The flags each command takes besides the target's. */
const FLAGS: Readonly<Record<string, readonly string[]>> = {
  held: ['tenant', 'lane'],
  release: ['tenant', 'ids', 'lane', 'all', 'reason', 'rate'],
  cancel: ['tenant', 'ids', 'lane', 'all', 'reason'],
  resume: ['tenant', 'key', 'reason'],
  policy: ['tenant', 'set', 'clear'],
};
const TARGET_FLAGS = new Set(Object.keys(TARGET_OPTIONS));
const COMMANDS = Object.keys(FLAGS).join(', ');

/** The request field each flag becomes, to word the shared validation in the user's terms. */
const FLAG_OF: Readonly<Record<string, string>> = {
  tenant: '--tenant',
  keyId: '--key',
  ids: '--ids',
  lane: '--lane',
  all: '--all',
  reason: '--reason',
};

/** Parses `argv` (without `node guard.ts`). Throws UsageError with the reason in words. */
export function parseGuardArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): GuardCommand {
  const parsed = commandLine(argv, parse);
  if (parsed === undefined) return { command: 'help' };
  const { values, positionals } = parsed;
  const [command, extra] = positionals;
  if (command === undefined) throw new UsageError(`Name a command: ${COMMANDS}.`);
  const allowed = FLAGS[command];
  if (allowed === undefined) throw new UsageError(`Unknown command "${command}"; use ${COMMANDS}.`);
  if (extra !== undefined) throw new UsageError(`${command} takes options only; unexpected "${extra}".`);
  const misplaced = Object.keys(values).find((flag) => !TARGET_FLAGS.has(flag) && !allowed.includes(flag));
  if (misplaced) throw new UsageError(`--${misplaced} does not apply to ${command}.`);
  const target = targetOf(values, env);

  switch (command) {
    case 'held': {
      const query = checked(() => heldQuery({ tenant: values.tenant, lane: values.lane }));
      return { command, target, tenant: query.tenant, ...(query.lane ? { lane: query.lane } : {}) };
    }
    case 'release':
    case 'cancel': {
      const chosen = (['ids', 'lane', 'all'] as const).filter((f) => values[f] !== undefined);
      if (chosen.length !== 1) {
        throw new UsageError(
          `${command} needs one of --ids A,B, --lane L or --all${chosen.length > 1 ? ', not several' : ''}.`,
        );
      }
      const body = {
        tenant: values.tenant,
        reason: values.reason,
        ...(values.ids !== undefined
          ? {
              ids: values.ids
                .split(',')
                .map((id) => id.trim())
                .filter((id) => id !== ''),
            }
          : {}),
        ...(values.lane !== undefined ? { lane: values.lane } : {}),
        ...(values.all ? { all: true } : {}),
      };
      const request = checked(() => heldRequest(body));
      if (command === 'cancel') return { command, target, request };
      return { command, target, request, rate: rateOf(values.rate) };
    }
    case 'policy': {
      const { tenant } = checked(() => heldQuery({ tenant: values.tenant }));
      if (values.set !== undefined && values.clear) throw new UsageError('Use --set or --clear, not both.');
      if (values.clear) return { command, target, tenant, override: null };
      if (values.set === undefined) return { command, target, tenant };
      return { command, target, tenant, override: overrideOf(values.set) };
    }
    default: {
      if ((values.tenant === undefined) === (values.key === undefined)) {
        throw new UsageError('resume needs one of --tenant T or --key KEYID.');
      }
      const request = checked(() =>
        resumeRequest({
          reason: values.reason,
          ...(values.tenant !== undefined ? { tenant: values.tenant } : { keyId: values.key }),
        }),
      );
      return { command: 'resume', target, request };
    }
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
}

/** The shared request checks (the admin routes'), their field errors worded by flag. */
function checked<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    const lines = (error.problem.errors ?? []).map((e) => {
      const field = e.path.replace(/\[.*$/, '');
      return `  ${FLAG_OF[field] ?? field}: ${e.message}`;
    });
    throw new UsageError(`The command cannot run as typed:\n${lines.join('\n')}`, { cause: error });
  }
}

function overrideOf(raw: string): GuardPolicyOverride {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new UsageError('--set takes a JSON object, e.g. \'{"tenantHardBounce": {"minimumSends": 2000}}\'.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--set takes a JSON object of rules and their figures.');
  }
  return parsed as GuardPolicyOverride;
}

function rateOf(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_RELEASE_RATE;
  const rate = Number(raw.trim());
  if (!/^[0-9]+(\.[0-9]+)?$/.test(raw.trim()) || !(rate > 0)) {
    throw new UsageError(`--rate must be a positive number of recipients per second, got "${raw}".`);
  }
  return rate;
}

/** Where a command runs: the guard's ports over the target's tables, queues and bucket. */
export interface GuardCliTarget {
  readonly ops: GuardOperationsDeps;
  /** The guard's own records (a tenant's policy override). */
  readonly state: Pick<GuardStateStore, 'tenant' | 'putTenant'>;
  /** For messages: "local mode at http://127.0.0.1:3000" or "stack Baton (eu-west-1)". */
  readonly description: string;
}

/** Runs one command. Errors propagate: `guard.ts` turns them into words and an exit code. */
export async function runGuardCommand(
  command: Exclude<GuardCommand, { command: 'help' }>,
  target: GuardCliTarget,
  io: Output,
  sleep: (ms: number) => Promise<unknown> = delay,
): Promise<void> {
  const { ops } = target;
  switch (command.command) {
    case 'held': {
      const entries: HeldListing[] = [];
      let cursor: string | undefined;
      do {
        const page = await listHeld(ops, command.tenant, {
          ...(command.lane ? { lane: command.lane } : {}),
          ...(cursor === undefined ? {} : { cursor }),
        });
        entries.push(...page.entries);
        cursor = page.cursor;
      } while (cursor !== undefined);
      if (entries.length === 0) {
        io.err(
          `No held mail for tenant ${command.tenant}${command.lane ? ` on the ${command.lane} lane` : ''} (${target.description}).`,
        );
        return;
      }
      io.out(heldTable(entries));
      io.err(
        `${entries.length} held message${entries.length === 1 ? '' : 's'} for tenant ${command.tenant} (${target.description}).`,
      );
      return;
    }
    case 'release': {
      const { request, rate } = command;
      const result = await releaseHeld(ops, request.tenant, request.selection, request.reason, {
        ratePerSecond: { transactional: rate, broadcast: rate },
        sleep,
      });
      report(io, result, 'Released', request.tenant, target);
      return;
    }
    case 'cancel': {
      const { request } = command;
      const result = await cancelHeld(ops, request.tenant, request.selection, request.reason);
      report(io, result, 'Cancelled', request.tenant, target);
      return;
    }
    case 'policy': {
      if (command.override === undefined) {
        const record = await target.state.tenant(command.tenant);
        io.out(JSON.stringify({ override: record?.override ?? null }, null, 2));
        io.err(
          `Tenant ${command.tenant}'s policy override (${target.description}); null: the defaults apply.`,
        );
        return;
      }
      let policy: GuardPolicy;
      try {
        policy = await setGuardPolicy(target.state, command.tenant, command.override ?? undefined);
      } catch (error) {
        if (!(error instanceof GuardPolicyError)) throw error;
        throw new CommandFailedError(`The override cannot apply:\n  ${error.problems.join('\n  ')}`, {
          cause: error,
        });
      }
      io.out(JSON.stringify(policy, null, 2));
      io.err(
        `Tenant ${command.tenant}'s policy override is ${command.override === null ? 'cleared' : 'set'} ` +
          `(${target.description}); the policy above applies from its next evaluation.`,
      );
      return;
    }
    case 'resume': {
      const { target: whom, reason } = command.request;
      await resumeGuard(ops, whom, reason);
      const which = whom.kind === 'tenant' ? `Tenant ${whom.tenant}` : `Key ${whom.keyId}`;
      io.err(
        `${which} is resumed (${target.description}): nothing the guard decided is in force, its window ` +
          `restarts now and probation (half thresholds) follows. The api function and SMTP server see it ` +
          `within ${MAX_KEY_CACHE_SECONDS} s. Held mail stays held: release it with npm run guard -- release.`,
      );
      return;
    }
  }
}

/** One line per message on stdout (scripts can read it), the sums on stderr; exit 1 if any is still held. */
function report(io: Output, result: HeldResult, verb: string, tenant: string, target: GuardCliTarget): void {
  for (const o of result.outcomes) {
    const detail = o.outcome === 'released' ? o.lane : 'reason' in o ? o.reason : '';
    io.out(`${o.id}  ${o.outcome}${detail ? `  ${detail}` : ''}`);
  }
  const { counts } = result;
  const done = verb === 'Released' ? counts.released : counts.cancelled;
  io.err(
    `${verb} ${done} for tenant ${tenant} (${target.description}); expired ${counts.expired}, ` +
      `still held ${counts.held}, not held ${counts.missing}.`,
  );
  if (counts.held > 0) {
    throw new CommandFailedError(
      `${counts.held} message${counts.held === 1 ? ' is' : 's are'} still held; the reasons are above.`,
    );
  }
}

/** Reasons are sentences; the table keeps them to a line. */
const MAX_CELL = 80;

export function heldTable(entries: readonly HeldListing[]): string {
  const header = ['ID', 'LANE', 'KEY', 'HELD AT', 'UNTIL', 'ACTION', 'SIGNAL', 'REASON'];
  const rows = entries.map((e) => [
    e.id,
    e.lane,
    e.keyId ?? '-',
    e.heldAt,
    e.expired ? 'expired' : e.until,
    e.action,
    e.signal,
    e.reason,
  ]);
  return columns([header, ...rows], MAX_CELL);
}
