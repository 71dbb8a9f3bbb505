import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { keyIdOf } from '../../lambdas/domain/keys/api-key.ts';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { seedApiKey } from '../support/e2e-keys.ts';
import {
  expectSentOnce,
  lanesDrained,
  receipt,
  type TestBaton,
  waitFor,
  withTestBaton,
} from '../support/local-baton.ts';

// Issue 13 end to end in local mode, with the SES stand-in's mailbox simulator (whose recipients the
// guard counts in local mode): the guard counts at the front door and in the feedback function,
// evaluates, and acts through the key items every request reads.

let baton: TestBaton;
withTestBaton(
  (started) => {
    baton = started;
  },
  // Evaluate every second rather than every minute, so the tests need not wait a minute between
  // a signal and the decision (the rate of evaluation is a setting, not part of any rule).
  { functionEnvironment: { [EnvVar.keyCacheSeconds]: '1', [EnvVar.guardEvaluateSeconds]: '1' } },
);

const SIMULATOR = 'simulator.amazonses.com';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `npm run <name> -- <args>` against this local mode, as an operator runs it. */
function script(name: 'keys' | 'guard', ...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [`scripts/${name}.ts`, ...args, '--local', '--state-dir', baton.dir],
      { cwd: REPO_ROOT, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout: `${stdout}${stderr}` });
      },
    );
  });
}

/** Polls the message, as its own tenant's key sees it, until it shows `status`. */
function reaches(id: string, status: string, token: string): Promise<true> {
  return waitFor(`message ${id} to be ${status}`, async () => {
    const res = await baton.request(`/v1/messages/${id}`, { auth: token });
    return ((await res.json()) as { status: string }).status === status ? true : undefined;
  });
}

const broadcast = (to: string) =>
  receipt(to, { stream: 'broadcast', listUnsubscribe: 'https://example.com/unsubscribe' });

describe('the abuse guard in local mode', () => {
  it('suspends a key that sends to its own suppressed addresses, and refuses it with the signal named', async () => {
    // Prepare: a key of its own tenant, ten of whose recipients are on the tenant's list.
    const token = await seedApiKey(baton, { tenant: 'guard-suppressed' });
    const suppressed = Array.from({ length: 10 }, (_, i) => `gone${i}@example.com`);
    for (const address of suppressed) {
      const res = await baton.request(`/v1/suppressions/${address}`, {
        method: 'PUT',
        json: { reason: 'manual' },
        auth: token,
      });
      expect(res.status).toBeLessThan(300);
    }

    // Act: 50 attempts in one batch, 10 of them (20 %) suppressed: at or above 15 % of 50.
    const messages = [
      ...suppressed.map((to) => receipt(to)),
      ...Array.from({ length: 40 }, (_, i) => receipt(`success+s${i}@${SIMULATOR}`)),
    ];
    const batch = await baton.request('/v1/messages/batch', { json: { messages }, auth: token });
    expect(batch.status).toBe(207);

    // Assess: within the key cache's bound the key is refused, the detail naming the signal.
    const refused = await waitFor('the key to be suspended', async () => {
      const res = await baton.request('/v1/messages', { json: receipt(`success@${SIMULATOR}`), auth: token });
      return res.status === 403 ? ((await res.json()) as { detail: string }) : undefined;
    });
    expect(refused.detail).toMatch(/suspended by the abuse guard/);
    expect(refused.detail).toMatch(/suppressed-recipient hits 20 %/);
    const reputation = await baton.request('/v1/reputation', { auth: token });
    // A suspended key cannot read either: the operator's view (the dev key is another tenant's).
    expect(reputation.status).toBe(403);

    // The operator's tools: `keys show` gives the reason and figures, `guard resume` lifts it.
    const keyId = keyIdOf(token);
    const shown = await script('keys', 'show', keyId);
    expect([shown.code, shown.stdout]).toEqual([0, expect.stringMatching(/suppressed-recipient hits 20 %/)]);
    const resumed = await script('guard', 'resume', '--key', keyId, '--reason', 'key rotated');
    expect(resumed.code).toBe(0);
    await waitFor('the key to send again', async () => {
      const res = await baton.request('/v1/messages', { json: receipt(`success@${SIMULATOR}`), auth: token });
      return res.status === 202 ? true : undefined;
    });
  });

  it('holds broadcast mail during a bounce storm while transactional mail is delivered, and release sends the held mail once', async () => {
    // Prepare: a small tenant whose policy takes its rate over 20 sends and 1 bounce (the
    // default's 500 and 10, scaled down so the test runs in seconds).
    const tenant = 'guard-storm';
    const policy = await script(
      'guard',
      'policy',
      '--tenant',
      tenant,
      '--set',
      JSON.stringify({ tenantHardBounce: { minimumSends: 20, minimumEvents: 1 } }),
    );
    expect(policy.code).toBe(0);
    const token = await seedApiKey(baton, { tenant });

    // Act: a broadcast storm of 20, one of which bounces (5 %: pause broadcast, not hold all).
    // The bounce last: the pause then comes once the storm is sent, so only later mail is held.
    const storm = [
      ...Array.from({ length: 19 }, (_, i) => broadcast(`success+b${i}@${SIMULATOR}`)),
      broadcast(`bounce+1@${SIMULATOR}`),
    ];
    const sent = await baton.request('/v1/messages/batch', { json: { messages: storm }, auth: token });
    expect(sent.status).toBe(207);
    const standing = await waitFor(
      'the tenant to be paused',
      async () => {
        const res = await baton.request('/v1/reputation', { auth: token });
        const body = (await res.json()) as { standing: string; reasons: string[] };
        return body.standing === 'broadcast_paused' ? body : undefined;
      },
      30_000,
    );
    expect(standing.reasons.join(' ')).toMatch(/hard-bounce rate 5 %/);

    // Assess: a new broadcast message is held (once the keys carry the pause), a transactional one delivered.
    const held = await waitFor('broadcast mail to be held', async () => {
      const res = await baton.request('/v1/messages', {
        json: broadcast(`success+late@${SIMULATOR}`),
        auth: token,
      });
      const body = (await res.json()) as { id: string; status: string };
      return body.status === 'held' ? body : undefined;
    });
    const transactional = await baton.request('/v1/messages', {
      json: receipt(`success+tx@${SIMULATOR}`),
      auth: token,
    });
    const tx = (await transactional.json()) as { id: string; status: string };
    expect(tx.status).toBe('queued');
    await reaches(tx.id, 'delivered', token);
    await reaches(held.id, 'held', token);

    // Held too: the storm's broadcast mail still queued when the guard tripped (the sender re-checks).
    await lanesDrained(baton);
    const list = await baton.request(`/v1/guard/held?tenant=${tenant}`);
    const heldIds = ((await list.json()) as { items: { id: string }[] }).items.map((e) => e.id);
    expect(heldIds).toContain(held.id);

    // Release: the operator resumes the tenant, then releases its held mail: each sent once.
    const resume = await baton.request('/v1/guard/resume', { json: { tenant, reason: 'list cleaned' } });
    expect(resume.status).toBe(200);
    // At the lane's pace (1 a second by default), as much as fits in the request; then again.
    let released = 0;
    for (let complete = false; !complete; ) {
      const release = await baton.request('/v1/guard/release', {
        json: { tenant, all: true, reason: 'list cleaned' },
      });
      const body = (await release.json()) as { counts: { released: number }; complete: boolean };
      released += body.counts.released;
      complete = body.complete;
    }
    expect(released).toBe(heldIds.length);
    for (const id of heldIds) {
      await reaches(id, 'delivered', token);
      await expectSentOnce(baton, id);
    }
    // A second release finds nothing to send.
    const again = await baton.request('/v1/guard/release', { json: { tenant, all: true, reason: 'again' } });
    expect(((await again.json()) as { counts: { released: number } }).counts.released).toBe(0);
    await expectSentOnce(baton, held.id);
  }, 90_000);
});
