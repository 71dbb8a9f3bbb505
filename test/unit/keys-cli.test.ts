import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiKeyNotFoundError,
  ApiKeyRevokedError,
  hashToken,
  keyIdOf,
} from '../../lambdas/domain/keys/api-key.ts';
import { ApiKeyLockedError } from '../../lambdas/domain/keys/relay.ts';
import { developmentKeyItem, LocalSettingError } from '../../local/dev-keys.ts';
import {
  CommandFailedError,
  type KeyAdmin,
  type KeysCommand,
  type KeysTarget,
  keyDetails,
  keyTable,
  parseKeysArgs,
  runKeysCommand,
  USAGE,
  UsageError,
} from '../../scripts/keys-cli.ts';
import { readLocalState, stackOutputs } from '../../scripts/keys-target.ts';
import { InMemoryApiKeys, issueApiKey } from '../support/fakes.ts';
import { guardDecision } from '../support/guard.ts';

const LOCAL = { kind: 'local', stateDir: '.baton', explicit: false } as const;

function usageErrorOf(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseKeysArgs(argv, env);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error(`expected a UsageError for ${argv.join(' ')}`);
}

function recordingIo() {
  const io = { stdout: [] as string[], stderr: [] as string[] };
  return {
    io,
    output: { out: (t: string) => io.stdout.push(t), err: (t: string) => io.stderr.push(t) },
  };
}

/** A key table behind a deployment that sends from `sendingDomains`. */
const on = (
  store: KeyAdmin,
  sendingDomains: readonly string[] | undefined = ['example.com'],
): KeysTarget => ({
  store,
  description: 'stack Baton (eu-west-1)',
  sendingDomains,
  howToAddDomain: 'npx cdk deploy -c domains=...',
});

type Runnable = Exclude<KeysCommand, { command: 'help' }>;
const runnable = (c: KeysCommand): Runnable => {
  if (c.command === 'help') throw new Error('expected a runnable command');
  return c;
};

describe('parseKeysArgs', () => {
  it('reads a full create command into a spec and the default local target', () => {
    // Act
    const command = parseKeysArgs([
      'create',
      '--tenant',
      'acme',
      '--domains',
      'a.com, b.com',
      '--scopes',
      'send,suppressions',
      '--cidrs',
      '10.0.0.0/8,2001:db8::/32',
      '--policy',
      'rewrite',
      '--default-from',
      'relay@a.com',
      '--daily-quota',
      '5000',
      '--rate-limit',
      '10',
      '--name',
      'checkout service',
    ]);

    // Assess
    expect(command).toEqual({
      command: 'create',
      target: LOCAL,
      spec: {
        tenant: 'acme',
        name: 'checkout service',
        scopes: ['send', 'suppressions'],
        allowedDomains: ['a.com', 'b.com'],
        allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'],
        senderPolicy: 'rewrite',
        defaultFrom: 'relay@a.com',
        dailyQuota: 5000,
        rateLimit: 10,
      },
    });
  });

  it.each([
    [['list'], { command: 'list', target: LOCAL }],
    [['list', '--local'], { command: 'list', target: { ...LOCAL, explicit: true } }],
    [
      ['list', '--state-dir', '/tmp/b'],
      { command: 'list', target: { kind: 'local', stateDir: '/tmp/b', explicit: true } },
    ],
    [
      ['show', 'abcd1234efgh', '--stack', 'Prod'],
      { command: 'show', target: { kind: 'stack', stack: 'Prod' }, keyId: 'abcd1234efgh' },
    ],
    [
      ['suspend', 'abcd1234efgh', '--region', 'eu-west-1'],
      {
        command: 'suspend',
        target: { kind: 'stack', stack: 'Baton', region: 'eu-west-1' },
        keyId: 'abcd1234efgh',
      },
    ],
    [['resume', 'abcd1234efgh'], { command: 'resume', target: LOCAL, keyId: 'abcd1234efgh' }],
    [['revoke', 'abcd1234efgh'], { command: 'revoke', target: LOCAL, keyId: 'abcd1234efgh' }],
    [['--help'], { command: 'help' }],
    [['create', '-h'], { command: 'help' }],
    [['help'], { command: 'help' }],
  ] as const)('reads %j', (argv, expected) => {
    // Act
    const command = parseKeysArgs([...argv]);

    // Assess
    expect(command).toEqual(expected);
  });

  it('takes the local state folder from BATON_STATE_DIR, as npm start does', () => {
    // Act
    const command = parseKeysArgs(['list'], { BATON_STATE_DIR: '/srv/baton' });

    // Assess
    expect(command).toEqual({
      command: 'list',
      target: { kind: 'local', stateDir: '/srv/baton', explicit: false },
    });
  });

  it.each([
    [[], 'Name a command: create, list, show, suspend, resume or revoke.'],
    [['rotate'], 'Unknown command "rotate"; use create, list, show, suspend, resume or revoke.'],
    [
      ['list', '--bogus'],
      "Unknown option '--bogus'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--bogus\"",
    ],
    [['create', '--tenant'], "Option '--tenant <value>' argument missing"],
    [['list', '--tenant', 'acme'], '--tenant applies only to create.'],
    [['list', 'extra'], 'list takes no arguments; unexpected "extra".'],
    [['show'], 'show needs a key id: npm run keys -- show <keyId>.'],
    [['show', 'abcd1234efgh', 'other1234567'], 'show takes one key id; unexpected "other1234567".'],
    [['show', 'ABC'], '"ABC" is not a key id (8-32 lower-case letters and digits, as list shows).'],
    [
      ['revoke', 'bt_abcd1234efgh_0123456789abcdefghijKLMNOP'],
      'That looks like a whole API key. Pass only its id (the part between "bt_" and the next "_"), so the secret stays out of your shell history.',
    ],
    [['list', '--local', '--stack', 'Baton'], 'Choose one target: --local or --stack, not both.'],
    [
      ['list', '--state-dir', 'x', '--region', 'eu-west-1'],
      '--state-dir belongs to local mode; it cannot be combined with --stack or --region.',
    ],
    [['list', '--stack', ''], '--stack needs a stack name.'],
    [
      ['create', '--tenant', 'a', '--tenant', 'b', '--domains', 'a.com'],
      '--tenant is given more than once; give it once.',
    ],
    [['create', 'acme'], 'create takes options only; unexpected "acme".'],
    [
      ['create', '--tenant', 'acme', '--domains', 'a.com', '--daily-quota', '1e3'],
      '--daily-quota must be a positive whole number, got "1e3".',
    ],
  ])('refuses %j with a usage error naming the problem', (argv, message) => {
    // Act
    const error = usageErrorOf([...argv]);

    // Assess
    expect(error).toBe(message);
  });

  it('lists every invalid create flag in the user’s terms', () => {
    // Act
    const error = usageErrorOf([
      'create',
      '--tenant',
      'acme corp',
      '--domains',
      'a.com,localhost',
      '--cidrs',
      '10.0.0.0/40',
      '--policy',
      'rewrite',
      '--default-from',
      'relay@b.com',
    ]);

    // Assess
    expect(error).toBe(
      [
        'The key cannot be created as asked:',
        '  --tenant: "acme corp" must be 1-64 letters, digits, "_" or "-" (it becomes an SES message tag)',
        '  --domains: "localhost": domain must have at least two labels, e.g. example.com',
        '  --cidrs: "10.0.0.0/40": the prefix length must be a number from 0 to 32',
        '  --default-from: "relay@b.com" must be in one of the key\'s domains (a.com)',
      ].join('\n'),
    );
  });

  it('reads --smtp-without-auth into the spec', () => {
    // Act
    const command = parseKeysArgs([
      'create',
      '--tenant',
      'acme',
      '--domains',
      'a.com',
      '--cidrs',
      '10.1.0.0/16',
      '--smtp-without-auth',
    ]);

    // Assess
    expect(command).toEqual({
      command: 'create',
      target: LOCAL,
      spec: {
        tenant: 'acme',
        allowedDomains: ['a.com'],
        allowedCidrs: ['10.1.0.0/16'],
        smtpWithoutAuth: true,
      },
    });
  });

  it.each([
    [
      ['create', '--tenant', 'acme', '--domains', 'a.com', '--smtp-without-auth'],
      [
        'The key cannot be created as asked:',
        '  --smtp-without-auth: needs the source networks it relays for (--cidrs): without AUTH the source address is the only credential',
      ].join('\n'),
    ],
    [
      [
        'create',
        '--tenant',
        'acme',
        '--domains',
        'a.com',
        '--cidrs',
        '10.0.0.0/8',
        '--scopes',
        'read',
        '--smtp-without-auth',
      ],
      [
        'The key cannot be created as asked:',
        '  --smtp-without-auth: needs the send scope (relaying is sending)',
      ].join('\n'),
    ],
    [['list', '--smtp-without-auth'], '--smtp-without-auth applies only to create.'],
    [
      [
        'create',
        '--tenant',
        'acme',
        '--domains',
        'a.com',
        '--cidrs',
        '10.0.0.0/8',
        '--smtp-without-auth=yes',
      ],
      "Option '--smtp-without-auth' does not take an argument",
    ],
  ])('refuses %j', (argv, message) => {
    // Act
    const error = usageErrorOf([...argv]);

    // Assess
    expect(error).toBe(message);
  });

  it('requires --tenant and --domains for create', () => {
    // Act
    const error = usageErrorOf(['create']);

    // Assess
    expect(error).toBe(
      [
        'The key cannot be created as asked:',
        '  --tenant: is required',
        '  --domains: must list at least one domain the key may send from',
      ].join('\n'),
    );
  });
});

describe('runKeysCommand', () => {
  const now = () => new Date('2030-01-02T03:04:05.000Z');
  /** The guard's hour window the key-scope decisions below were taken over. */
  const GUARD_HOUR = { from: '2030-01-02T03:00:00.000Z', to: '2030-01-02T03:04:00.000Z', hours: 1 };
  /** `create` of a key for acme that relays without AUTH for `cidrs`. */
  const relayCreate = (cidrs: string) =>
    parseKeysArgs([
      'create',
      '--tenant',
      'acme',
      '--domains',
      'example.com',
      '--cidrs',
      cidrs,
      '--smtp-without-auth',
    ]);

  it('creates a key, prints the token alone on stdout and stores only its hash', async () => {
    // Prepare
    const store = new InMemoryApiKeys();
    const { io, output } = recordingIo();
    const command = parseKeysArgs([
      'create',
      '--tenant',
      'acme',
      '--domains',
      'example.com',
      '--name',
      'shop',
    ]);

    // Act
    await runKeysCommand(runnable(command), on(store), output, now);

    // Assess
    expect(io.stdout).toHaveLength(1);
    const token = io.stdout[0] ?? '';
    expect(token).toMatch(/^bt_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    const keyId = keyIdOf(token);
    expect(await store.get(keyId)).toEqual({
      keyId,
      secretHash: hashToken(token),
      tenant: 'acme',
      name: 'shop',
      scopes: ['send', 'read'],
      allowedDomains: ['example.com'],
      allowedCidrs: [],
      senderPolicy: 'reject',
      status: 'active',
      createdAt: '2030-01-02T03:04:05.000Z',
    });
    expect(io.stderr).toEqual([
      `Created API key ${keyId} for tenant acme (scopes send, read; sends from example.com).\n` +
        'Store the key below now: it is shown this once, and Baton keeps only its SHA-256.',
    ]);
  });

  it('creates a key that relays over SMTP without AUTH from its networks, and says so', async () => {
    // Prepare
    const store = new InMemoryApiKeys();
    const { io, output } = recordingIo();
    const command = relayCreate('10.1.0.0/16,2001:db8:1::/48');

    // Act
    await runKeysCommand(runnable(command), on(store), output, now);

    // Assess
    const keyId = keyIdOf(io.stdout[0] ?? '');
    expect((await store.get(keyId))?.smtpWithoutAuth).toBe(true);
    expect(io.stderr).toEqual([
      `Created API key ${keyId} for tenant acme (scopes send, read; sends from example.com).\n` +
        'Over SMTP it relays without AUTH for 10.1.0.0/16, 2001:db8:1::/48: anything that can connect from there sends as this key.\n' +
        'Store the key below now: it is shown this once, and Baton keeps only its SHA-256.',
    ]);
  });

  it('warns when a no-AUTH key relays for a network wider than /8 or /32, and creates it all the same', async () => {
    // Prepare
    const store = new InMemoryApiKeys();
    const { io, output } = recordingIo();
    const command = relayCreate('0.0.0.0/0,10.0.0.0/8,2001:db8::/31');

    // Act
    await runKeysCommand(runnable(command), on(store), output, now);

    // Assess
    expect(io.stderr[1]).toBe(
      'Warning: 0.0.0.0/0, 2001:db8::/31 are wider than a /8 (IPv4) or /32 (IPv6). Anything there that can reach the SMTP port ' +
        'sends as this key without AUTH: close to an open relay for example.com. Revoke the key and narrow --cidrs unless that is meant.',
    );
    expect(await store.list()).toHaveLength(1);
  });

  it('does not warn about wide networks of a key that needs AUTH (they only restrict it)', async () => {
    // Prepare
    const { io, output } = recordingIo();
    const command = parseKeysArgs([
      'create',
      '--tenant',
      'acme',
      '--domains',
      'example.com',
      '--cidrs',
      '0.0.0.0/0',
    ]);

    // Act
    await runKeysCommand(runnable(command), on(new InMemoryApiKeys()), output, now);

    // Assess
    expect(io.stderr).toHaveLength(1);
  });

  it('refuses a no-AUTH key whose networks overlap another one’s, naming that key and the networks, and writes nothing', async () => {
    // Prepare
    const other = issueApiKey({ tenant: 'shop', allowedCidrs: ['10.0.0.0/8'], smtpWithoutAuth: true });
    const store = new InMemoryApiKeys().add(other.key);
    const command = relayCreate('10.1.0.0/16');

    // Act
    const run = runKeysCommand(runnable(command), on(store), recordingIo().output, now);

    // Assess
    await expect(run).rejects.toThrow(
      new UsageError(
        `--cidrs: its SMTP networks without AUTH overlap those of key ${other.key.keyId} (tenant shop): 10.1.0.0/16 with 10.0.0.0/8. ` +
          'A connection must map to at most one key: narrow --cidrs, or revoke the other key first.',
      ),
    );
    expect((await store.list()).map((k) => k.keyId)).toEqual([other.key.keyId]);
  });

  it('reports a held relay lock as a failure to try again, not a usage error', async () => {
    // Prepare
    const store = new InMemoryApiKeys();
    const lockedUntil = new Date('2030-01-02T03:04:20.000Z');
    store.create = async () => {
      throw new ApiKeyLockedError(lockedUntil);
    };
    const command = relayCreate('10.1.0.0/16');

    // Act
    const run = runKeysCommand(runnable(command), on(store), recordingIo().output, now);

    // Assess
    await expect(run).rejects.toThrow(
      new CommandFailedError(
        'The key was not created: another creation of an SMTP key without AUTH holds the lock on their networks until 2030-01-02T03:04:20.000Z; try again then',
      ),
    );
  });

  it('refuses a key for a domain the deployment does not cover, naming the covered ones, and writes nothing', async () => {
    // Prepare
    const store = new InMemoryApiKeys();
    const command = parseKeysArgs(['create', '--tenant', 'acme', '--domains', 'example.com,example.org']);

    // Act
    const run = runKeysCommand(
      runnable(command),
      on(store, ['example.com', 'news.example.net']),
      recordingIo().output,
      now,
    );

    // Assess
    await expect(run).rejects.toThrow(
      new UsageError(
        '--domains: example.org is not covered by stack Baton (eu-west-1), which sends from example.com, ' +
          'news.example.net (and their subdomains) only. Use one of those, or add the domain first ' +
          '(npx cdk deploy -c domains=...).',
      ),
    );
    expect(await store.list()).toEqual([]);
  });

  it('creates a key for a subdomain of a sending identity, which SES lets the identity send from', async () => {
    // Prepare
    const store = new InMemoryApiKeys();
    const command = parseKeysArgs(['create', '--tenant', 'acme', '--domains', 'mail.example.com']);

    // Act
    await runKeysCommand(runnable(command), on(store, ['example.com']), recordingIo().output, now);

    // Assess
    expect((await store.list()).map((k) => k.allowedDomains)).toEqual([['mail.example.com']]);
  });

  it('refuses to create a key when the deployment does not say what it sends from', async () => {
    // Prepare
    const command = parseKeysArgs(['create', '--tenant', 'acme', '--domains', 'example.com']);

    // Act
    const run = runKeysCommand(
      runnable(command),
      { ...on(new InMemoryApiKeys()), sendingDomains: undefined },
      recordingIo().output,
      now,
    );

    // Assess
    await expect(run).rejects.toThrow(
      new CommandFailedError(
        'stack Baton (eu-west-1) does not say which domains it can send from (no SendingDomains); deploy this ' +
          'version of Baton (or restart local mode) first, so keys can be checked against them.',
      ),
    );
  });

  it('lists keys as a table without secrets or hashes', async () => {
    // Prepare
    const a = issueApiKey({ tenant: 'acme', name: 'checkout' });
    const b = issueApiKey({ tenant: 'beta', scopes: ['read'], allowedDomains: ['b.example', 'c.example'] });
    const store = new InMemoryApiKeys().add(b.key, a.key);
    const { io, output } = recordingIo();

    // Act
    await runKeysCommand({ command: 'list', target: LOCAL }, on(store), output, now);

    // Assess
    const table = io.stdout.join('\n');
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^KEY ID\s+TENANT\s+NAME\s+STATUS\s+SCOPES\s+DOMAINS\s+SMTP$/);
    expect(lines[1]).toMatch(
      new RegExp(
        `^${a.key.keyId}\\s+acme\\s+checkout\\s+active\\s+send,read,suppressions\\s+example\\.com\\s+AUTH$`,
      ),
    );
    expect(lines[2]).toMatch(
      new RegExp(`^${b.key.keyId}\\s+beta\\s+active\\s+read\\s+b\\.example,c\\.example\\s+-$`),
    );
    expect(lines).toHaveLength(3);
    for (const { token, key } of [a, b]) {
      expect(table).not.toContain(token.slice(`bt_${key.keyId}_`.length));
      expect(table).not.toContain(key.secretHash);
    }
  });

  it('warns about listed keys that name domains the deployment does not send from', async () => {
    // Prepare
    const ok = issueApiKey({ tenant: 'acme', allowedDomains: ['mail.example.com'] });
    const stale = issueApiKey({ tenant: 'beta', allowedDomains: ['example.com', 'old.example.net'] });
    const revoked = issueApiKey({ tenant: 'gamma', allowedDomains: ['old.example.net'], status: 'revoked' });
    const { io, output } = recordingIo();

    // Act
    await runKeysCommand(
      { command: 'list', target: LOCAL },
      on(new InMemoryApiKeys().add(ok.key, stale.key, revoked.key)),
      output,
      now,
    );

    // Assess
    expect(io.stderr).toEqual([
      `Key ${stale.key.keyId} (tenant beta) names old.example.net, which stack Baton (eu-west-1) does not send from (example.com): mail from it fails at SES.`,
    ]);
  });

  it('says so when there are no keys yet', async () => {
    // Prepare
    const { io, output } = recordingIo();

    // Act
    await runKeysCommand({ command: 'list', target: LOCAL }, on(new InMemoryApiKeys()), output, now);

    // Assess
    expect(io.stdout).toEqual([]);
    expect(io.stderr).toEqual([
      'No API keys yet; create one with: npm run keys -- create --tenant T --domains example.com',
    ]);
  });

  it('shows one key’s settings without its hash', async () => {
    // Prepare
    const { key } = issueApiKey({
      name: 'legacy app',
      allowedCidrs: ['10.0.0.0/8'],
      senderPolicy: 'rewrite',
      defaultFrom: 'relay@example.com',
      dailyQuota: 500,
    });
    const { io, output } = recordingIo();

    // Act
    await runKeysCommand(
      { command: 'show', target: LOCAL, keyId: key.keyId },
      on(new InMemoryApiKeys().add(key)),
      output,
      now,
    );

    // Assess
    expect(io.stdout).toEqual([
      [
        `Key ID         ${key.keyId}`,
        'Tenant         tenant-a',
        'Name           legacy app',
        'Status         active',
        'Scopes         send, read, suppressions',
        'Domains        example.com',
        'Source CIDRs   10.0.0.0/8',
        'SMTP           AUTH required',
        'Sender policy  rewrite to relay@example.com',
        'Daily quota    500 messages',
        'Rate limit     unlimited',
        'Created        2025-01-01T00:00:00.000Z',
        'Updated        -',
      ].join('\n'),
    ]);
  });

  it('shows why the abuse guard suspended a key and holds its tenant’s mail, with the figures', async () => {
    // Prepare
    const suspend = guardDecision({
      scope: 'key',
      action: 'suspendKey',
      signal: 'suppressedHitRate',
      rate: 0.18,
      threshold: 0.15,
      sample: { sends: 60, over: 'attempts', events: 11 },
      window: GUARD_HOUR,
      decidedAt: '2030-01-02T03:04:00.000Z',
      reason: 'suppressed-recipient hits at 18 % of 60 attempts this hour (suspend at 15 %)',
    });
    const pause = guardDecision({ action: 'holdAll', rate: 0.0725, threshold: 0.07 });
    const { key } = issueApiKey({
      status: 'suspended',
      guard: { key: { actions: [suspend] }, tenant: { actions: [pause] } },
    });
    const { io, output } = recordingIo();

    // Act
    await runKeysCommand(
      { command: 'show', target: LOCAL, keyId: key.keyId },
      on(new InMemoryApiKeys().add(key)),
      output,
      now,
    );

    // Assess
    expect(io.stdout[0]?.split('\n').slice(13)).toEqual([
      `Guard           suspended by the abuse guard: ${suspend.reason}`,
      'Guard figures   suppressedHitRate 18 % (threshold 15 %), 11 of 60 attempts, window 2030-01-02T03:00:00.000Z to 2030-01-02T03:04:00.000Z (1 h), decided 2030-01-02T03:04:00.000Z',
      `Resume with     npm run guard -- resume --key ${key.keyId} --reason "..." (once the cause is found)`,
      `Tenant guard    all of the tenant's mail is held: ${pause.reason}`,
      `Tenant figures  hardBounceRate 7.25 % (threshold 7 %), 40 of 800 sends, window ${pause.window.from} to ${pause.window.to} (48 h), decided ${pause.decidedAt}`,
    ]);
  });

  it('shows a throttle while it lasts, with its figures, and nothing once it has lapsed', async () => {
    // Prepare
    const throttle = guardDecision({
      scope: 'key',
      action: 'throttleKey',
      signal: 'volumeSpike',
      rate: 3000,
      threshold: 1000,
      sample: { sends: 3000, over: 'sends', events: 2400 },
      window: GUARD_HOUR,
      until: '2030-01-02T04:04:00.000Z',
      reason: 'volume spike',
    });
    const { key } = issueApiKey({ guard: { key: { actions: [throttle] } } });
    const later = () => new Date('2030-01-02T05:00:00.000Z');
    const during = recordingIo();
    const after = recordingIo();

    // Act
    const target = on(new InMemoryApiKeys().add(key));
    await runKeysCommand({ command: 'show', target: LOCAL, keyId: key.keyId }, target, during.output, now);
    await runKeysCommand({ command: 'show', target: LOCAL, keyId: key.keyId }, target, after.output, later);

    // Assess
    expect(during.io.stdout[0]?.split('\n').slice(13)).toEqual([
      'Guard          throttled until 2030-01-02T04:04:00.000Z: volume spike',
      'Guard figures  volumeSpike 3000 sends this hour (threshold 1000), 2400 to new recipient domains, window 2030-01-02T03:00:00.000Z to 2030-01-02T03:04:00.000Z (1 h), decided 2025-03-01T11:00:00.000Z',
    ]);
    expect(after.io.stdout[0]?.split('\n')).toHaveLength(13);
  });

  it('fails to show a key that does not exist', async () => {
    // Act
    const run = runKeysCommand(
      { command: 'show', target: LOCAL, keyId: 'nokey0000000' },
      on(new InMemoryApiKeys()),
      recordingIo().output,
      now,
    );

    // Assess
    await expect(run).rejects.toThrow(new CommandFailedError('No API key has the id nokey0000000.'));
  });

  it('suspends, resumes and revokes, saying when the change takes effect', async () => {
    // Prepare
    const { key } = issueApiKey();
    const store = new InMemoryApiKeys().add(key);
    const { io, output } = recordingIo();
    const run = (command: 'suspend' | 'resume' | 'revoke') =>
      runKeysCommand({ command, target: LOCAL, keyId: key.keyId }, on(store), output, now);

    // Act
    await run('suspend');
    await run('suspend');
    await run('resume');
    await run('revoke');

    // Assess
    const who = `Key ${key.keyId} (tenant tenant-a)`;
    const bound = 'within 60 s (the api function caches key lookups)';
    expect(io.stderr).toEqual([
      `${who} is suspended: requests with it are refused (403) ${bound}. Undo with resume.`,
      `${who} was already suspended; nothing changed.`,
      `${who} is active again: requests with it are accepted ${bound}.`,
      `${who} is revoked for good: requests with it are refused (401) ${bound}.`,
    ]);
    expect(await store.get(key.keyId)).toEqual({ ...key, status: 'revoked', updatedAt: now().toISOString() });
  });

  it('refuses to resume a revoked key', async () => {
    // Prepare
    const { key } = issueApiKey({ status: 'revoked' });
    const store = new InMemoryApiKeys().add(key);

    // Act
    const run = runKeysCommand(
      { command: 'resume', target: LOCAL, keyId: key.keyId },
      on(store),
      recordingIo().output,
    );

    // Assess
    await expect(run).rejects.toThrow(ApiKeyRevokedError);
    expect((await store.get(key.keyId))?.status).toBe('revoked');
  });

  it('refuses to suspend a key that does not exist', async () => {
    // Act
    const run = runKeysCommand(
      { command: 'suspend', target: LOCAL, keyId: 'nokey0000000' },
      on(new InMemoryApiKeys()),
      recordingIo().output,
    );

    // Assess
    await expect(run).rejects.toThrow(ApiKeyNotFoundError);
  });
});

describe('keyTable and keyDetails', () => {
  it('shortens long names so the table stays readable', () => {
    // Prepare
    const { key } = issueApiKey({ name: 'n'.repeat(100) });

    // Act
    const table = keyTable([key]);

    // Assess
    expect(table.split('\n')[1]).toContain(`${'n'.repeat(39)}…`);
    expect(table).not.toContain('n'.repeat(40));
  });

  it('never prints a hash, even when handed a stored item', () => {
    // Prepare
    const { key } = issueApiKey();

    // Act
    const text = `${keyTable([key])}\n${keyDetails(key)}`;

    // Assess
    expect(text).not.toContain(key.secretHash);
  });
});

describe('keyTable and keyDetails: SMTP without AUTH', () => {
  it('marks a no-AUTH key in the list, and shows the networks it relays for', () => {
    // Prepare
    const { key } = issueApiKey({ allowedCidrs: ['10.1.0.0/16', '2001:db8:1::/48'], smtpWithoutAuth: true });

    // Act
    const table = keyTable([key]);
    const details = keyDetails(key);

    // Assess
    expect(table.split('\n')[1]).toMatch(/\sno AUTH$/);
    expect(details).toContain('\nSMTP           without AUTH from 10.1.0.0/16, 2001:db8:1::/48\n');
  });

  it('says a key without the send scope cannot use SMTP', () => {
    // Act
    const details = keyDetails(issueApiKey({ scopes: ['read'] }).key);

    // Assess
    expect(details).toContain('\nSMTP           cannot send (no send scope)\n');
  });

  it('documents --smtp-without-auth and the overlap rule in the usage text', () => {
    // Assess
    expect(USAGE).toContain('--smtp-without-auth');
    expect(USAGE).toContain('overlap');
  });
});

describe('readLocalState', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-keys-unit-'));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const state = {
    pid: 4242,
    url: 'http://127.0.0.1:3000',
    region: 'us-east-1',
    endpoints: { dynamodb: 'http://127.0.0.1:4567', sqs: 'x', ses: 'y' },
    environment: { BATON_API_KEYS_TABLE: 'Baton-ApiKeys-1' },
    sendingDomains: ['example.com'],
  };

  it('finds the DynamoDB endpoint, region and ApiKeys table of a running local mode', () => {
    // Prepare
    writeFileSync(join(dir, 'local.json'), JSON.stringify(state));

    // Act
    const found = readLocalState(dir, true, () => true);

    // Assess
    expect(found).toEqual({
      url: 'http://127.0.0.1:3000',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:4567',
      table: 'Baton-ApiKeys-1',
      sendingDomains: ['example.com'],
      environment: { BATON_API_KEYS_TABLE: 'Baton-ApiKeys-1' },
      sqsEndpoint: 'x',
    });
  });

  it('says local mode is not running when there is no local.json', () => {
    // Act
    const read = () => readLocalState(dir, true, () => true);

    // Assess
    expect(read).toThrow(
      new CommandFailedError(
        `Local mode is not running: ${join(dir, 'local.json')} does not exist. Start it with "npm start" (with the same BATON_STATE_DIR), or point --state-dir at its state folder.`,
      ),
    );
  });

  it('offers both targets when none was chosen and local mode is not running', () => {
    // Act
    const read = () => readLocalState(dir, false, () => true);

    // Assess
    expect(read).toThrow(
      new CommandFailedError(
        `No local Baton is running (${join(dir, 'local.json')} does not exist). Start local mode with "npm start", or manage a deployed stack with --stack <name> [--region <region>].`,
      ),
    );
  });

  it('recognises a local.json left behind by a local mode that has exited', () => {
    // Prepare
    writeFileSync(join(dir, 'local.json'), JSON.stringify(state));

    // Act
    const read = () => readLocalState(dir, true, () => false);

    // Assess
    expect(read).toThrow(
      new CommandFailedError(
        `Local mode is not running: ${join(dir, 'local.json')} names process 4242, which has exited (its data, kept in memory, is gone). Start it again with "npm start".`,
      ),
    );
  });

  it('refuses a local.json without the ApiKeys table', () => {
    // Prepare
    writeFileSync(join(dir, 'local.json'), JSON.stringify({ ...state, environment: {} }));

    // Act
    const read = () => readLocalState(dir, true, () => true);

    // Assess
    expect(read).toThrow(
      new CommandFailedError(
        `${join(dir, 'local.json')} lacks the DynamoDB endpoint, region or BATON_API_KEYS_TABLE; restart local mode to rewrite it.`,
      ),
    );
  });
});

describe('stackOutputs: the ApiKeys table', () => {
  const cfnMock = mockClient(CloudFormationClient);
  const cfn = () => new CloudFormationClient({ region: 'eu-west-1' });

  beforeEach(() => {
    cfnMock.reset();
  });

  it('reads the ApiKeys table name from the stack outputs', async () => {
    // Prepare
    cfnMock.on(DescribeStacksCommand, { StackName: 'Baton' }).resolves({
      Stacks: [
        {
          StackName: 'Baton',
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(),
          Outputs: [
            { OutputKey: 'ApiUrl', OutputValue: 'https://x.execute-api.eu-west-1.amazonaws.com/' },
            { OutputKey: 'ApiKeysTableName', OutputValue: 'Baton-ApiKeys1A2B-XYZ' },
          ],
        },
      ],
    });

    // Act
    const { table } = await stackOutputs(cfn(), 'Baton');

    // Assess
    expect(table).toBe('Baton-ApiKeys1A2B-XYZ');
  });

  it('reads the sending domains from the SendingDomains output, and none from a stack deployed before it', async () => {
    // Prepare
    const stackWith = (outputs: { OutputKey: string; OutputValue: string }[]) => ({
      Stacks: [
        {
          StackName: 'Baton',
          StackStatus: 'UPDATE_COMPLETE' as const,
          CreationTime: new Date(),
          Outputs: outputs,
        },
      ],
    });
    const table = { OutputKey: 'ApiKeysTableName', OutputValue: 'Baton-ApiKeys1A2B-XYZ' };
    cfnMock
      .on(DescribeStacksCommand, { StackName: 'Baton' })
      .resolves(
        stackWith([table, { OutputKey: 'SendingDomains', OutputValue: 'example.com,News.example.org' }]),
      )
      .on(DescribeStacksCommand, { StackName: 'Old' })
      .resolves(stackWith([table]));

    // Act
    const current = await stackOutputs(cfn(), 'Baton');
    const old = await stackOutputs(cfn(), 'Old');

    // Assess
    expect(current).toEqual({
      table: 'Baton-ApiKeys1A2B-XYZ',
      sendingDomains: ['example.com', 'news.example.org'],
      outputs: { ApiKeysTableName: 'Baton-ApiKeys1A2B-XYZ', SendingDomains: 'example.com,News.example.org' },
    });
    expect(old.sendingDomains).toBeUndefined();
  });

  it('says which stack and region it could not find', async () => {
    // Prepare
    cfnMock
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));

    // Act
    const lookup = stackOutputs(cfn(), 'Nope');

    // Assess
    await expect(lookup).rejects.toThrow(
      new CommandFailedError(
        'No CloudFormation stack named Nope in eu-west-1. Deploy it with "npx cdk deploy", or pass --stack and --region of yours.',
      ),
    );
  });

  it('says when the stack has no ApiKeysTableName output', async () => {
    // Prepare
    cfnMock.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'Other', StackStatus: 'CREATE_COMPLETE', CreationTime: new Date(), Outputs: [] }],
    });

    // Act
    const lookup = stackOutputs(cfn(), 'Other');

    // Assess
    await expect(lookup).rejects.toThrow(
      new CommandFailedError(
        'Stack Other in eu-west-1 has no ApiKeysTableName output: is it a Baton stack, and has its deployment finished?',
      ),
    );
  });
});

describe('developmentKeyItem (local mode’s BATON_DOMAINS)', () => {
  const token = 'bt_devkey000001_abcdefghijklmnopqrstuvwxyz0123456789ABCD';

  it('refuses a BATON_DOMAINS entry the local deployment’s identities do not cover, naming them', () => {
    // Act
    const create = () => developmentKeyItem(token, ['example.com', 'example.org'], ['example.com']);

    // Assess
    expect(create).toThrow(
      new LocalSettingError(
        'BATON_DOMAINS: example.org is not covered by local mode (BATON_SENDING_DOMAINS), which sends from ' +
          'example.com (and their subdomains) only. Use one of those, or add the domain first ' +
          '(list it in BATON_SENDING_DOMAINS too).',
      ),
    );
  });

  it('accepts subdomains of the identities, and BATON_DOMAINS alone as its own identities', () => {
    // Act / Assess
    expect(developmentKeyItem(token, ['news.example.com'], ['example.com']).allowedDomains).toEqual([
      'news.example.com',
    ]);
    expect(developmentKeyItem(token, ['example.com', 'example.org']).allowedDomains).toEqual([
      'example.com',
      'example.org',
    ]);
  });
});
