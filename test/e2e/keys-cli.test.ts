import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { keyIdOf } from '../../lambdas/domain/keys/api-key.ts';
import { MAX_KEY_CACHE_SECONDS } from '../../lambdas/domain/keys/key-cache.ts';
import { LOCAL_STATE_FILE, type LocalState } from '../../local/baton-local.ts';
import { LOCAL_STATE_FILE as CLI_STATE_FILE } from '../../scripts/keys-target.ts';
import { type TestBaton, waitFor, withTestBaton } from '../support/local-baton.ts';
import { expectProblem } from '../support/problems.ts';

// `npm run keys` against local mode, as a user runs it: a child process that finds local mode
// through <state-dir>/local.json, writes the ApiKeys table, and the API honouring the change.

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BOUND_MS = MAX_KEY_CACHE_SECONDS * 1000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['scripts/keys.ts', ...args],
      { cwd: REPO_ROOT, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let baton: TestBaton;
const local = () => ['--local', '--state-dir', baton.dir];

/** Creates a key through the CLI and returns the token it printed. */
async function createKey(...flags: string[]): Promise<string> {
  const run = await cli('create', ...local(), '--tenant', 'acme', '--domains', 'example.com', ...flags);
  expect(run.stderr).toContain('Created API key');
  expect(run.code).toBe(0);
  return run.stdout.trim();
}

/** A read that needs a valid, active key: 404 for a message that does not exist. */
async function probe(token: string): Promise<{ status: number; body: { code?: string; detail?: string } }> {
  const res = await baton.request('/v1/messages/msg_00000000000000000000000000', { auth: token });
  return { status: res.status, body: (await res.json()) as { code?: string; detail?: string } };
}

/** Local mode runs up to 4 api processes (API_CONCURRENCY in local/baton-local.ts), each with its own cache. */
const API_PROCESSES = 4;

/** One probe per api process: concurrent requests each get an idle process of their own. */
async function burst(token: string): Promise<number[]> {
  return Promise.all(Array.from({ length: API_PROCESSES }, async () => (await probe(token)).status));
}

/**
 * Polls every key until every api process answers its expected status, and returns how long each
 * took from now: the time a change written just before takes to reach every cache.
 */
async function msUntilEvery(expected: ReadonlyArray<{ token: string; status: number }>): Promise<number[]> {
  const since = Date.now();
  const took: Array<number | undefined> = expected.map(() => undefined);
  await waitFor(
    `every api process to answer ${expected.map((e) => e.status).join(' and ')}`,
    async () => {
      for (const [i, { token, status }] of expected.entries()) {
        if (took[i] !== undefined) continue;
        if ((await burst(token)).every((s) => s === status)) took[i] = Date.now() - since;
      }
      return took.every((t) => t !== undefined) ? (took as number[]) : undefined;
    },
    BOUND_MS + 10_000,
    250,
  );
  return took as number[];
}

withTestBaton((started) => {
  baton = started;
});

describe('npm run keys against local mode', () => {
  it('finds local mode through the state file local mode writes', () => {
    // Act: read the file where the CLI looks for it
    const state = JSON.parse(readFileSync(join(baton.dir, CLI_STATE_FILE), 'utf8')) as LocalState;

    // Assess
    expect(CLI_STATE_FILE).toBe(LOCAL_STATE_FILE);
    expect([state.pid, state.url, state.endpoints]).toEqual([process.pid, baton.url, baton.endpoints]);
  });

  it('creates a key that the API accepts at once, printing it alone on stdout', async () => {
    // Act
    const token = await createKey('--name', 'e2e shop');
    const res = await baton.request('/v1/messages', {
      auth: token,
      json: {
        from: 'Shop <orders@example.com>',
        to: ['success@simulator.amazonses.com'],
        subject: 'Hi',
        text: 'x',
      },
    });

    // Assess
    expect(token).toMatch(/^bt_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect(res.status).toBe(202);
  });

  it('lists and shows keys without ever printing a secret', async () => {
    // Prepare
    const token = await createKey('--name', 'listed');
    const keyId = keyIdOf(token);
    const secret = token.slice(`bt_${keyId}_`.length);

    // Act
    const list = await cli('list', ...local());
    const show = await cli('show', keyId, ...local());

    // Assess
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      new RegExp(`^${keyId}\\s+acme\\s+listed\\s+active\\s+send,read\\s+example\\.com\\s+AUTH$`, 'm'),
    );
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`Key ID         ${keyId}\n`);
    for (const output of [list.stdout, list.stderr, show.stdout, show.stderr]) {
      expect(output).not.toContain(secret);
      expect(output).not.toMatch(/[0-9a-f]{64}/);
    }
  });

  it(
    'refuses a suspended key (403) and a revoked one (401) within the cache bound, and resumes only the suspended one',
    async () => {
      // Prepare: both keys in use, so every api process has cached them as active.
      const suspended = await createKey('--name', 'to suspend');
      const revoked = await createKey('--name', 'to revoke');
      expect(await burst(suspended)).toEqual([404, 404, 404, 404]);
      expect(await burst(revoked)).toEqual([404, 404, 404, 404]);

      // Act
      const [suspend, revoke] = await Promise.all([
        cli('suspend', keyIdOf(suspended), ...local()),
        cli('revoke', keyIdOf(revoked), ...local()),
      ]);
      const [suspendMs, revokeMs] = await msUntilEvery([
        { token: suspended, status: 403 },
        { token: revoked, status: 401 },
      ]);
      const refusedSuspended = await probe(suspended);
      const refusedRevoked = await probe(revoked);
      const [resume, resumeRevoked] = await Promise.all([
        cli('resume', keyIdOf(suspended), ...local()),
        cli('resume', keyIdOf(revoked), ...local()),
      ]);
      const [resumeMs] = await msUntilEvery([{ token: suspended, status: 404 }]);

      // Assess
      const bound = 'within 60 s (the api function caches key lookups)';
      expect(suspend).toEqual({
        code: 0,
        stdout: '',
        stderr: `Key ${keyIdOf(suspended)} (tenant acme) is suspended: requests with it are refused (403) ${bound}. Undo with resume.\n`,
      });
      expect(revoke).toEqual({
        code: 0,
        stdout: '',
        stderr: `Key ${keyIdOf(revoked)} (tenant acme) is revoked for good: requests with it are refused (401) ${bound}.\n`,
      });
      expect(suspendMs).toBeLessThanOrEqual(BOUND_MS);
      expect(revokeMs).toBeLessThanOrEqual(BOUND_MS);
      expect(refusedSuspended.body).toMatchObject({
        code: 'forbidden',
        detail: 'This API key is suspended.',
      });
      expect(refusedRevoked.body).toMatchObject({
        code: 'unauthorized',
        detail: 'The API key is not valid.',
      });
      expect(resume.code).toBe(0);
      expect(resumeMs).toBeLessThanOrEqual(BOUND_MS);
      expect(resumeRevoked).toEqual({
        code: 1,
        stdout: '',
        stderr: `Key ${keyIdOf(revoked)} is revoked, which is permanent: it cannot be resumed or suspended. Create a new key instead.\n`,
      });
    },
    3 * BOUND_MS,
  );

  it('refuses a key limited to 10.0.0.0/8 from 127.0.0.1 with 403 naming the reason', async () => {
    // Prepare
    const token = await createKey('--cidrs', '10.0.0.0/8');

    // Act
    const res = await baton.request('/v1/messages', {
      auth: token,
      json: { from: 'orders@example.com', to: ['success@simulator.amazonses.com'], subject: 'Hi', text: 'x' },
    });

    // Assess
    expectProblem(res, await res.json(), {
      type: 'urn:baton:problem:forbidden',
      title: 'Not allowed for this API key',
      status: 403,
      code: 'forbidden',
      detail: 'This API key may not be used from this source address.',
    });
  });

  it('creates a key that relays over SMTP without AUTH, and refuses a second one on overlapping networks with exit code 2', async () => {
    // Prepare
    const first = keyIdOf(await createKey('--cidrs', '198.18.7.0/24', '--smtp-without-auth'));

    // Act
    const second = await cli(
      'create',
      ...local(),
      '--tenant',
      'other',
      '--domains',
      'example.com',
      '--cidrs',
      '::ffff:198.18.7.9',
      '--smtp-without-auth',
    );
    const list = await cli('list', ...local());

    // Assess
    expect(second.code).toBe(2);
    expect(second.stdout).toBe('');
    expect(second.stderr).toContain(
      `--cidrs: its SMTP networks without AUTH overlap those of key ${first} (tenant acme): ::ffff:198.18.7.9 with 198.18.7.0/24.`,
    );
    expect(list.stdout).toMatch(new RegExp(`^${first}\\s.*\\sno AUTH$`, 'm'));
    expect(list.stdout.match(/no AUTH$/gm)).toHaveLength(1);
  });

  it('refuses a key for a domain local mode does not send from, with exit code 2 naming the ones it does', async () => {
    // Act
    const run = await cli(
      'create',
      ...local(),
      '--tenant',
      'acme',
      '--domains',
      'example.com,elsewhere.example.net',
    );

    // Assess
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      `--domains: elsewhere.example.net is not covered by local mode at ${baton.url}, which sends from example.com (and their subdomains) only.`,
    );
  });

  it('says which key does not exist, with exit code 1', async () => {
    // Act
    const run = await cli('suspend', 'nokey0000000', ...local());

    // Assess
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^No API key has the id nokey0000000 \(local mode at http:\/\/127\.0\.0\.1:\d+, table .+\)\.\n$/,
    );
  });

  it('refuses a bad command line with exit code 2 before touching the table', async () => {
    // Act
    const run = await cli('create', ...local(), '--tenant', 'acme corp', '--domains', 'example.com');

    // Assess
    expect(run).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'The key cannot be created as asked:\n' +
        '  --tenant: "acme corp" must be 1-64 letters, digits, "_" or "-" (it becomes an SES message tag)\n' +
        'Run "npm run keys -- --help" for usage.\n',
    });
  });

  it('says local mode is not running when its state folder has no local.json, with exit code 1', async () => {
    // Prepare
    const empty = mkdtempSync(join(tmpdir(), 'baton-keys-none-'));

    // Act
    const run = await cli('list', '--state-dir', empty);
    rmSync(empty, { recursive: true, force: true });

    // Assess
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: `Local mode is not running: ${join(empty, 'local.json')} does not exist. Start it with "npm start" (with the same BATON_STATE_DIR), or point --state-dir at its state folder.\n`,
    });
  });
});
