import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { heldEntry, markHeld } from '../../lambdas/domain/guard/hold.ts';
import type { MessageRecord } from '../../lambdas/domain/message.ts';
import type { Lane } from '../../lambdas/shared/names.ts';
import {
  type GuardCliTarget,
  type GuardCommand,
  parseGuardArgs,
  runGuardCommand,
} from '../../scripts/guard-cli.ts';
import { mainGuard } from '../../scripts/guard-target.ts';
import { CommandFailedError, UsageError } from '../../scripts/keys-cli.ts';
import { messageRecord, sendJob, T0 } from '../support/builders.ts';
import {
  InMemoryApiKeys,
  InMemoryGuardStateStore,
  InMemoryHeldJobs,
  InMemoryJobQueue,
  InMemoryMessageStore,
  issueApiKey,
  RecordingGuard,
  testClock,
} from '../support/fakes.ts';
import { guardDecision } from '../support/guard.ts';

const LOCAL = { kind: 'local', stateDir: '.baton', explicit: false } as const;

function usageErrorOf(argv: string[]): string {
  try {
    parseGuardArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error(`expected a UsageError for ${argv.join(' ')}`);
}

/** The guard's ports over fakes, as `guard.ts` would build them over a target, and recorded output. */
function cli() {
  const clock = testClock(T0);
  const messages = new InMemoryMessageStore();
  const held = new InMemoryHeldJobs();
  const queue = new InMemoryJobQueue();
  const keys = new InMemoryApiKeys();
  const guard = new RecordingGuard();
  const { key } = issueApiKey({ tenant: 'shop' });
  keys.add(key);
  const state = new InMemoryGuardStateStore();
  const target: GuardCliTarget = {
    state,
    ops: { messages, held, queue, keys, guard, clock },
    description: 'local mode at http://127.0.0.1:3000',
  };
  const io = { stdout: [] as string[], stderr: [] as string[] };
  const output = { out: (t: string) => io.stdout.push(t), err: (t: string) => io.stderr.push(t) };
  const sleeps: number[] = [];
  const sleep = async (ms: number) => {
    sleeps.push(ms);
    clock.advance(ms);
  };
  const hold = async (id: string, lane: Lane = 'broadcast'): Promise<MessageRecord> => {
    const record = markHeld(
      messageRecord({ id, tenant: 'shop', stream: lane, keyId: key.keyId }),
      guardDecision({ tenantId: 'shop', action: lane === 'broadcast' ? 'pauseBroadcast' : 'holdAll' }),
      clock(),
    ) as MessageRecord;
    messages.seed(record);
    await held.keep(heldEntry(record, record.hold ?? expect.fail('no hold')), sendJob(undefined, id, 'shop'));
    return record;
  };
  const run = (argv: string[]) =>
    runGuardCommand(
      parseGuardArgs(argv) as Exclude<GuardCommand, { command: 'help' }>,
      target,
      output,
      sleep,
    );
  return { run, io, sleeps, hold, keys, key, messages, held, queue, guard, state };
}

describe('npm run guard: the command line', () => {
  it.each<[string[], GuardCommand]>([
    [['held', '--tenant', 'shop'], { command: 'held', target: LOCAL, tenant: 'shop' }],
    [
      ['held', '--tenant', 'shop', '--lane', 'broadcast', '--stack', 'Prod'],
      { command: 'held', target: { kind: 'stack', stack: 'Prod' }, tenant: 'shop', lane: 'broadcast' },
    ],
    [
      ['release', '--tenant', 'shop', '--ids', 'msg_1, msg_2', '--reason', 'list cleaned', '--rate', '7'],
      {
        command: 'release',
        target: LOCAL,
        request: { tenant: 'shop', selection: { ids: ['msg_1', 'msg_2'] }, reason: 'list cleaned' },
        rate: 7,
      },
    ],
    [
      ['release', '--tenant', 'shop', '--lane', 'broadcast', '--reason', 'ok'],
      {
        command: 'release',
        target: LOCAL,
        request: { tenant: 'shop', selection: { lane: 'broadcast' }, reason: 'ok' },
        rate: 1,
      },
    ],
    [
      ['cancel', '--tenant', 'shop', '--all', '--reason', 'spam run'],
      {
        command: 'cancel',
        target: LOCAL,
        request: { tenant: 'shop', selection: { all: true }, reason: 'spam run' },
      },
    ],
    [
      ['resume', '--key', 'abcd1234efgh', '--reason', 'rotated'],
      {
        command: 'resume',
        target: LOCAL,
        request: { target: { kind: 'key', keyId: 'abcd1234efgh' }, reason: 'rotated' },
      },
    ],
    [
      ['resume', '--tenant', 'shop', '--reason', 'cleaned'],
      {
        command: 'resume',
        target: LOCAL,
        request: { target: { kind: 'tenant', tenant: 'shop' }, reason: 'cleaned' },
      },
    ],
    [['--help'], { command: 'help' }],
  ])('parses %j', (argv, expected) => {
    // Act / Assess
    expect(parseGuardArgs(argv)).toEqual(expected);
  });

  it.each([
    [[], 'Name a command: held, release, cancel, resume, policy.'],
    [['unhold'], 'Unknown command "unhold"; use held, release, cancel, resume, policy.'],
    [['release', '--tenant', 'shop', '--reason', 'x'], 'release needs one of --ids A,B, --lane L or --all.'],
    [
      ['cancel', '--tenant', 'shop', '--all', '--lane', 'broadcast', '--reason', 'x'],
      'cancel needs one of --ids A,B, --lane L or --all, not several.',
    ],
    [
      ['release', '--tenant', 'shop', '--all'],
      'The command cannot run as typed:\n  --reason: is required: say why, it is kept on each message and in the log',
    ],
    [
      ['release', '--tenant', 'shop', '--ids', 'msg_1,nope', '--reason', 'x'],
      'The command cannot run as typed:\n  --ids: must be a message id (msg_...)',
    ],
    [
      ['release', '--tenant', 'shop', '--all', '--reason', 'x', '--rate', '0'],
      '--rate must be a positive number of recipients per second, got "0".',
    ],
    [
      ['cancel', '--tenant', 'shop', '--all', '--reason', 'x', '--rate', '5'],
      '--rate does not apply to cancel.',
    ],
    [['resume', '--reason', 'x'], 'resume needs one of --tenant T or --key KEYID.'],
    [
      ['resume', '--key', 'bt_abcd1234efgh_secret', '--reason', 'x'],
      'The command cannot run as typed:\n  --key: must be a key id (8-32 lower-case letters and digits)',
    ],
    [['held'], 'The command cannot run as typed:\n  --tenant: is required'],
    [['held', '--tenant', 'shop', '--reason', 'x'], '--reason does not apply to held.'],
    [['held', '--tenant', 'a', '--tenant', 'b'], '--tenant is given more than once; give it once.'],
    [
      ['held', '--tenant', 'shop', '--local', '--stack', 'Prod'],
      'Choose one target: --local or --stack, not both.',
    ],
  ])('refuses %j: %s', (argv, message) => {
    // Act / Assess
    expect(usageErrorOf(argv)).toBe(message);
  });
});

describe('npm run guard: the commands', () => {
  it('lists the tenant’s held mail as a table', async () => {
    // Prepare
    const { run, io, hold, key } = cli();
    await hold('msg_1');

    // Act
    await run(['held', '--tenant', 'shop']);

    // Assess
    expect(io.stdout[0]?.split('\n')).toEqual([
      expect.stringMatching(/^ID\s+LANE\s+KEY\s+HELD AT\s+UNTIL\s+ACTION\s+SIGNAL\s+REASON$/),
      expect.stringMatching(
        new RegExp(
          `^msg_1\\s+broadcast\\s+${key.keyId}\\s+${T0}\\s+2025-03-08T12:00:00.000Z\\s+pauseBroadcast\\s+hardBounceRate\\s+hard bounces`,
        ),
      ),
    ]);
    expect(io.stderr).toEqual(['1 held message for tenant shop (local mode at http://127.0.0.1:3000).']);
  });

  it('says so when nothing is held', async () => {
    // Prepare
    const { run, io } = cli();

    // Act
    await run(['held', '--tenant', 'shop', '--lane', 'transactional']);

    // Assess
    expect([io.stdout, io.stderr]).toEqual([
      [],
      ['No held mail for tenant shop on the transactional lane (local mode at http://127.0.0.1:3000).'],
    ]);
  });

  it('releases held mail once at the rate asked, one line per message; running it again sends nothing', async () => {
    // Prepare
    const { run, io, sleeps, hold, queue } = cli();
    for (const id of ['msg_1', 'msg_2', 'msg_3']) await hold(id);

    // Act
    await run(['release', '--tenant', 'shop', '--all', '--reason', 'list cleaned', '--rate', '4']);
    await run(['release', '--tenant', 'shop', '--all', '--reason', 'list cleaned', '--rate', '4']);

    // Assess
    expect(io.stdout).toEqual([
      'msg_1  released  broadcast',
      'msg_2  released  broadcast',
      'msg_3  released  broadcast',
    ]);
    expect(sleeps).toEqual([250, 250]);
    expect(queue.jobs.map((j) => j.job.id)).toEqual(['msg_1', 'msg_2', 'msg_3']);
    expect(io.stderr).toEqual([
      'Released 3 for tenant shop (local mode at http://127.0.0.1:3000); expired 0, still held 0, not held 0.',
      'Released 0 for tenant shop (local mode at http://127.0.0.1:3000); expired 0, still held 0, not held 0.',
    ]);
  });

  it('fails (exit 1) naming each message still held and why', async () => {
    // Prepare: the key that sent it is suspended.
    const { run, io, hold, keys, key } = cli();
    await keys.setStatus(key.keyId, 'suspended');
    await hold('msg_1', 'transactional');

    // Act
    const released = run(['release', '--tenant', 'shop', '--ids', 'msg_1', '--reason', 'ok']);

    // Assess
    await expect(released).rejects.toThrow(
      new CommandFailedError('1 message is still held; the reasons are above.'),
    );
    expect(io.stdout).toEqual([`msg_1  held  key ${key.keyId} is suspended: resume the key first`]);
  });

  it('cancels held mail with the reason', async () => {
    // Prepare
    const { run, io, hold, messages } = cli();
    await hold('msg_1');

    // Act
    await run(['cancel', '--tenant', 'shop', '--ids', 'msg_1', '--reason', 'spam run']);

    // Assess
    expect(io.stdout).toEqual(['msg_1  cancelled']);
    expect(messages.peek('msg_1')?.recipients[0]?.reason).toBe('cancelled by an operator: spam run');
  });

  it('resumes a key through the guard, with the reason', async () => {
    // Prepare
    const { run, io, guard } = cli();

    // Act
    await run(['resume', '--key', 'abcd1234efgh', '--reason', 'rotated its password']);

    // Assess
    expect(guard.resumes).toEqual([
      { target: { kind: 'key', keyId: 'abcd1234efgh' }, reason: 'rotated its password' },
    ]);
    expect(io.stderr[0]).toMatch(/^Key abcd1234efgh is resumed \(local mode at http:\/\/127.0.0.1:3000\)/);
  });
});

describe('npm run guard: the process', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-guard-unit-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const recorded = () => {
    const io = { stdout: [] as string[], stderr: [] as string[] };
    return { io, output: { out: (t: string) => io.stdout.push(t), err: (t: string) => io.stderr.push(t) } };
  };
  const unwired = () => {
    throw new Error('the wiring must not be built');
  };

  it('prints the usage and exits 0 for --help, 2 for a command line that cannot run', async () => {
    // Prepare
    const help = recorded();
    const wrong = recorded();

    // Act
    const codes = [
      await mainGuard(['--help'], {}, unwired, help.output),
      await mainGuard(['release', '--all'], {}, unwired, wrong.output),
    ];

    // Assess
    expect(codes).toEqual([0, 2]);
    expect(help.io.stdout[0]).toMatch(/^Operate Baton's abuse guard/);
    expect(wrong.io.stderr[0]).toMatch(
      /--tenant: is required[\s\S]*Run "npm run guard -- --help" for usage.$/,
    );
  });

  it('exits 1 in words when no local mode runs, touching nothing', async () => {
    // Prepare
    const { io, output } = recorded();

    // Act
    const code = await mainGuard(['held', '--tenant', 'shop', '--state-dir', dir], {}, unwired, output);

    // Assess
    expect(code).toBe(1);
    expect(io.stderr).toEqual([
      `Local mode is not running: ${join(dir, 'local.json')} does not exist. Start it with "npm start" (with the same BATON_STATE_DIR), or point --state-dir at its state folder.`,
    ]);
  });

  it('hands the guard’s wiring local mode’s environment and runs the command over what it returns', async () => {
    // Prepare
    const environment = {
      BATON_API_KEYS_TABLE: 'keys',
      BATON_MESSAGES_TABLE: 'messages',
      BATON_TRANSACTIONAL_QUEUE_URL: 'http://127.0.0.1:1/q/t',
      BATON_BROADCAST_QUEUE_URL: 'http://127.0.0.1:1/q/b',
      BATON_PAYLOAD_BUCKET: 'payloads',
      BATON_GUARD_TABLE: 'guard',
    };
    writeFileSync(
      join(dir, 'local.json'),
      JSON.stringify({
        pid: process.pid,
        url: 'http://127.0.0.1:3000',
        region: 'us-east-1',
        endpoints: { dynamodb: 'http://127.0.0.1:1', sqs: 'http://127.0.0.1:2', ses: 'http://127.0.0.1:3' },
        environment,
        sendingDomains: ['example.com'],
      }),
    );
    const guard = new RecordingGuard();
    const seen: NodeJS.ProcessEnv[] = [];
    const { io, output } = recorded();

    // Act
    const code = await mainGuard(
      ['resume', '--tenant', 'shop', '--reason', 'cleaned', '--state-dir', dir],
      {},
      ({ env }) => {
        seen.push(env);
        return { guard, held: new InMemoryHeldJobs(), state: new InMemoryGuardStateStore() };
      },
      output,
    );

    // Assess
    expect([code, io.stderr[0]]).toEqual([
      0,
      expect.stringMatching(/^Tenant shop is resumed \(local mode at http:\/\/127.0.0.1:3000\)/),
    ]);
    expect(seen).toEqual([environment]);
    expect(guard.resumes).toEqual([{ target: { kind: 'tenant', tenant: 'shop' }, reason: 'cleaned' }]);
  });
});

describe('npm run guard -- policy', () => {
  it('sets a tenant’s override, checked against the defaults, shows it, and clears it', async () => {
    // Prepare
    const { run, io, state } = cli();

    // Act
    await run(['policy', '--tenant', 'shop', '--set', '{"tenantHardBounce": {"minimumSends": 2000}}']);
    const set = await state.tenant('shop');
    await run(['policy', '--tenant', 'shop']);
    await run(['policy', '--tenant', 'shop', '--clear']);

    // Assess
    expect(set?.override).toEqual({ tenantHardBounce: { minimumSends: 2000 } });
    expect(JSON.parse(io.stdout[0] ?? '')).toMatchObject({
      tenantHardBounce: { minimumSends: 2000, actAt: 0.04 },
    });
    expect(JSON.parse(io.stdout[1] ?? '')).toEqual({
      override: { tenantHardBounce: { minimumSends: 2000 } },
    });
    expect((await state.tenant('shop'))?.override).toBeUndefined();
    expect(io.stderr.at(-1)).toContain('cleared');
  });

  it('keeps what the guard has in force on the tenant while it changes the override', async () => {
    // Prepare
    const { run, state } = cli();
    const paused = guardDecision({ tenantId: 'shop' });
    await state.putTenant({ tenant: 'shop', state: { actions: [paused] }, version: 1 });

    // Act
    await run(['policy', '--tenant', 'shop', '--set', '{"tenantComplaint": {"actAt": 0.001}}']);

    // Assess
    expect(await state.tenant('shop')).toMatchObject({ state: { actions: [paused] }, version: 2 });
  });

  it.each([
    ['a threshold in percent', '{"tenantHardBounce": {"actAt": 4}}', 'tenantHardBounce.actAt'],
    ['an unknown rule', '{"tenantBounce": {}}', 'tenantBounce: unknown rule'],
    ['a fixed field', '{"keyHardBounce": {"action": "warn"}}', 'keyHardBounce.action'],
  ])('refuses %s, naming the field, and writes nothing', async (_, json, named) => {
    // Prepare
    const { run, state } = cli();

    // Act
    const failure = run(['policy', '--tenant', 'shop', '--set', json]);

    // Assess
    await expect(failure).rejects.toThrow(CommandFailedError);
    await expect(failure).rejects.toThrow(named);
    expect(await state.tenant('shop')).toBeUndefined();
  });

  it.each([
    [['policy'], /--tenant/],
    [['policy', '--tenant', 'shop', '--set', 'not json'], /JSON object/],
    [['policy', '--tenant', 'shop', '--set', '[1]'], /JSON object/],
    [['policy', '--tenant', 'shop', '--set', '{}', '--clear'], /not both/],
  ])('refuses %j with a usage error', (argv, message) => {
    // Act
    const parse = () => parseGuardArgs(argv, {});

    // Assess
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow(message);
  });
});
