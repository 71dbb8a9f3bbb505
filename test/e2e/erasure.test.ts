import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import {
  ERASURE_SEGMENTS,
  type ErasureJob,
  erasedKeyFunction,
} from '../../lambdas/domain/erasure/erasure.ts';
import type { MessageView } from '../../lambdas/domain/reporting/status.ts';
import { seedApiKey } from '../support/e2e-keys.ts';
import { sqsClient } from '../support/emulators.ts';
import { receipt, TEST_API_KEY, type TestBaton, waitFor, withTestBaton } from '../support/local-baton.ts';

// DESIGN §2 DELETE /v1/recipients/{address}, end to end through local mode: the real api handler
// (its erasure secret handed over by local mode, which keeps it in the state folder), the sender
// and feedback handlers, dynalite and the SES stand-in's mailbox simulator.

let baton: TestBaton;

withTestBaton((started) => {
  baton = started;
});

async function send(to: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await baton.request('/v1/messages', { json: receipt(to) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function view(id: string): Promise<{ text: string; view: MessageView }> {
  const res = await baton.request(`/v1/messages/${id}`);
  const text = await res.text();
  return { text, view: JSON.parse(text) as MessageView };
}

const erase = (address: string) =>
  baton.request(`/v1/recipients/${encodeURIComponent(address)}`, { method: 'DELETE' });

describe('recipient erasure in local mode', () => {
  it('erases a bounced address from its messages, keeps it suppressed, and says nothing new about it', async () => {
    // Prepare: one delivered message and one that bounced (suppressing the address).
    const address = 'bounce+erase1@simulator.amazonses.com';
    const bounced = await send(address);
    const id = String(bounced.body.id);
    // The feedback function suppresses first, then records the bounce on the message: wait for both.
    await waitFor('the bounce to be recorded and the address suppressed', async () => {
      const res = await baton.request(`/v1/suppressions/${encodeURIComponent(address)}`);
      return res.status === 200 && (await view(id)).view.status === 'bounced' ? true : undefined;
    });
    const delivered = await send('success+erase1@simulator.amazonses.com');

    // Act
    const first = await erase(address);
    const again = await erase(address);

    // Assess: the answer, then every place the address was.
    expect([first.status, await first.json()]).toEqual([202, { erased: 1 }]);
    expect([again.status, await again.json()]).toEqual([202, { erased: 0 }]);
    const erasedView = await view(id);
    expect(erasedView.text.toLowerCase()).not.toContain('bounce+erase1');
    const pseudonym = erasedView.view.recipients[0]?.address ?? '';
    expect(pseudonym).toMatch(/^erased:[0-9a-f]{24}$/);
    expect(erasedView.view.recipients[0]?.status).toBe('bounced');
    expect((await view(String(delivered.body.id))).text).toContain('success+erase1@simulator.amazonses.com');

    const lookup = await baton.request(`/v1/suppressions/${encodeURIComponent(address)}`);
    expect([lookup.status, ((await lookup.json()) as { address: string; reason: string }).reason]).toEqual([
      200,
      'hard_bounce',
    ]);
    const list = (await (await baton.request('/v1/suppressions?limit=1000')).json()) as {
      items: Array<{ address: string; reason: string; scope: string }>;
    };
    // The tenant's tombstone is listed under the pseudonym; the bounce itself is SES's evidence
    // for every tenant, so it stays on the global list (only an operator lifts it).
    expect(list.items.map((s) => s.address)).toContain(pseudonym);
    expect(list.items.filter((s) => s.address === address)).toEqual([
      expect.objectContaining({ reason: 'hard_bounce', scope: 'global' }),
    ]);
  });

  it('never mails an erased address again, even one that was never suppressed', async () => {
    // Prepare
    const address = 'success+erase2@simulator.amazonses.com';
    const before = await send(address);
    await waitFor('the first message to be delivered', async () =>
      (await view(String(before.body.id))).view.status === 'delivered' ? true : undefined,
    );

    // Act
    const erased = await erase(address);
    const after = await send(address);

    // Assess
    expect([erased.status, await erased.json()]).toEqual([202, { erased: 1 }]);
    expect(after).toEqual({
      status: 202,
      body: {
        id: expect.stringMatching(/^msg_/),
        status: 'suppressed',
        recipients: [{ address, status: 'suppressed', reason: 'manual' }],
        rewrittenFrom: null,
      },
    });
    const lookup = (await (
      await baton.request(`/v1/suppressions/${encodeURIComponent(address)}`)
    ).json()) as {
      reason: string;
      detail: string;
    };
    expect([lookup.reason, lookup.detail]).toEqual(['manual', 'erased']);
    // The new message's record holds the pseudonym: the address is not stored again.
    const record = await view(String((after.body as { id: string }).id));
    expect(record.view.recipients.map((r) => r.address)).toEqual([
      expect.stringMatching(/^erased:[0-9a-f]{24}$/),
    ]);
    expect(record.text).not.toContain(address);
  });

  it('finishes an erasure in the worker function when the rest is handed over on its queue', async () => {
    // Prepare: a delivered message, and the step the api would queue after running out of time.
    const address = 'success+erase3@simulator.amazonses.com';
    const sent = await send(address);
    const id = String(sent.body.id);
    await waitFor('the message to be delivered', async () =>
      (await view(id)).view.status === 'delivered' ? true : undefined,
    );
    const key = erasedKeyFunction(readFileSync(join(baton.dir, 'erasure-secret'), 'utf8').trim())(address);
    const [, queue] =
      [...baton.queues].find(([logicalId]) => /^ErasureQueue(?!.*DeadLetter)/.test(logicalId)) ?? [];
    if (queue === undefined) throw new Error(`no erasure queue in ${[...baton.queues.keys()].join(', ')}`);
    const step: ErasureJob = {
      baton: 'erasure',
      v: 1,
      tenant: 'dev',
      key,
      segments: ERASURE_SEGMENTS,
      positions: Array.from({ length: ERASURE_SEGMENTS }, () => ({ done: false })),
      erased: 0,
      startedAt: new Date().toISOString(),
      round: 1,
    };
    const sqs = sqsClient(baton.endpoints.sqs);

    // Act
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify(step) }));
    const erased = await waitFor('the worker to erase the record', async () => {
      const { view: v } = await view(id);
      return v.recipients[0]?.address === key ? v : undefined;
    });
    sqs.destroy();

    // Assess
    expect(erased.recipients.map((r) => [r.address, r.status])).toEqual([[key, 'delivered']]);
  });

  it('keeps the erasure secret in the state folder, readable by its owner only, and out of every log', async () => {
    // Prepare
    const file = join(baton.dir, 'erasure-secret');

    // Act
    const secret = readFileSync(file, 'utf8').trim();
    const logs = readdirSync(baton.logDir).map((name) => readFileSync(join(baton.logDir, name), 'utf8'));

    // Assess
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(logs.some((log) => log.includes('"recipient erased"'))).toBe(true);
    expect(logs.filter((log) => log.includes(secret))).toEqual([]);
  });
});

describe('suppressions between tenants over HTTP', () => {
  const as = (auth: string) => ({
    send: async (to: string) => {
      const res = await baton.request('/v1/messages', { json: receipt(to), auth });
      return ((await res.json()) as { status: string }).status;
    },
    get: (address: string) => baton.request(`/v1/suppressions/${encodeURIComponent(address)}`, { auth }),
    put: (address: string, json: unknown) =>
      baton.request(`/v1/suppressions/${encodeURIComponent(address)}`, { method: 'PUT', json, auth }),
    delete: (address: string) =>
      baton.request(`/v1/suppressions/${encodeURIComponent(address)}`, { method: 'DELETE', auth }),
    erase: (address: string) =>
      baton.request(`/v1/recipients/${encodeURIComponent(address)}`, { method: 'DELETE', auth }),
    listed: async () =>
      (
        (await (await baton.request('/v1/suppressions?limit=1000', { auth })).json()) as {
          items: Array<{ address: string; reason: string }>;
        }
      ).items,
  });

  it("keeps a tenant's erasure and manual suppression to that tenant: the other still mails, reads 404, lists nothing", async () => {
    // Prepare: two tenants' keys with the suppressions scope (neither is an operator).
    const a = as(await seedApiKey(baton, { tenant: 'tenant-a' }));
    const b = as(await seedApiKey(baton, { tenant: 'tenant-b' }));
    const erased = 'success+tenants1@simulator.amazonses.com';
    const manual = 'success+tenants2@simulator.amazonses.com';

    // Act: A erases an address it never mailed and suppresses another one.
    const erasure = await a.erase(erased);
    const put = await a.put(manual, { reason: 'unsubscribe' });

    // Assess: A's mail to both is suppressed; B's goes out, and B sees no trace of either entry.
    expect([erasure.status, put.status]).toEqual([202, 200]);
    expect([await a.send(erased), await a.send(manual)]).toEqual(['suppressed', 'suppressed']);
    expect([await b.send(erased), await b.send(manual)]).toEqual(['queued', 'queued']);
    expect([(await b.get(erased)).status, (await b.get(manual)).status]).toEqual([404, 404]);
    const bList = await b.listed();
    expect(bList.filter((s) => s.reason === 'manual' || s.reason === 'unsubscribe')).toEqual([]);
    expect(bList.some((s) => s.address.startsWith('erased:'))).toBe(false);
    const aList = await a.listed();
    expect(aList.map((s) => s.address)).toContain(manual);
    expect(aList.some((s) => s.address.startsWith('erased:'))).toBe(true);

    // Act: B's DELETE cannot lift A's entries; A's can.
    expect((await b.delete(manual)).status).toBe(204);
    expect(await a.send(manual)).toBe('suppressed');
    expect((await a.delete(manual)).status).toBe(204);
    expect(await a.send(manual)).toBe('queued');
  });

  it('lets every tenant see a bounce, refuses a tenant that tries to lift it with 403, and lets an operator lift it', async () => {
    // Prepare: the address bounces (the development key has every scope, `admin` included).
    const address = 'bounce+tenants3@simulator.amazonses.com';
    const tenant = as(await seedApiKey(baton, { tenant: 'tenant-c' }));
    const operator = as(TEST_API_KEY);
    await operator.send(address);
    await waitFor('the bounce to suppress the address', async () =>
      (await tenant.get(address)).status === 200 ? true : undefined,
    );

    // Act
    const refused = await tenant.delete(address);
    const erasure = await tenant.erase(address);

    // Assess: the tenant gets words, not a lift; its erasure lifts nothing for anyone else either.
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(((await refused.json()) as { detail: string }).detail).toMatch(
      /hard_bounce.*operator|operator.*hard_bounce/,
    );
    expect(erasure.status).toBe(202);
    expect(((await (await operator.get(address)).json()) as { reason: string }).reason).toBe('hard_bounce');
    expect(await tenant.send(address)).toBe('suppressed');

    // Act: the operator lifts the bounce.
    const lifted = await operator.delete(address);

    // Assess: gone for the operator's tenant; the tenant that erased it still never mails it.
    expect(lifted.status).toBe(204);
    expect((await operator.get(address)).status).toBe(404);
    expect(await tenant.send(address)).toBe('suppressed');
  });
});
