import '../../support/quiet-powertools.ts';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { GuardService } from '../../../lambdas/domain/guard/service.ts';
import { holdFor } from '../../../lambdas/domain/guard/state.ts';
import type { ApiKey } from '../../../lambdas/domain/keys/api-key.ts';
import { acceptMessage } from '../../../lambdas/domain/send/accept.ts';
import { createFeedbackBatch } from '../../../lambdas/feedback/app.ts';
import { MessageTag } from '../../../lambdas/shared/names.ts';
import { recipient, sendBody, sqsRecord } from '../../support/builders.ts';
import {
  InMemoryApiKeys,
  InMemoryGuardCounters,
  InMemoryGuardKeyWriter,
  InMemoryGuardStateStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
} from '../../support/fakes.ts';
import { fixtureJson } from '../../support/fixtures.ts';
import { acceptHarness } from '../../support/harness.ts';

// Issue 13's scenario replay end to end in one process: messages accepted by the real accept path,
// SES's real bounce notification (the AWS documentation's configuration-set event, re-addressed)
// through the real feedback function, the real GuardService over the in-memory stores, with a fake
// clock, and the decision enforced by the accept path on the next message.

const BOUNCE = fixtureJson<Record<string, unknown>>('ses/ses-event_aws-doc_bounce.json');

/** The fixture's bounce, about Baton message `id` sent to `to` (its tags name the message). */
function bounceOf(id: string, to: string, at: string): string {
  const event = structuredClone(BOUNCE) as {
    bounce: Record<string, unknown>;
    mail: Record<string, unknown>;
  };
  event.bounce.bouncedRecipients = [
    { emailAddress: to, action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
  ];
  event.bounce.timestamp = at;
  event.bounce.feedbackId = `fb-${id}`;
  event.mail.messageId = `ses-${id}`;
  event.mail.destination = [to];
  event.mail.timestamp = at;
  event.mail.tags = { [MessageTag.messageId]: [id] };
  return JSON.stringify(event);
}

function rig() {
  const h = acceptHarness({ tenant: 'shop' });
  const keys = new InMemoryApiKeys();
  keys.add(h.key);
  const guard = new GuardService({
    counters: new InMemoryGuardCounters(),
    state: new InMemoryGuardStateStore(),
    keys: new InMemoryGuardKeyWriter(keys),
    clock: h.clock,
  });
  const deps = { ...h.deps, guard };
  const feedback = createFeedbackBatch({
    messages: h.messages,
    suppressions: new InMemorySuppressionStore(),
    softBounces: new InMemorySoftBounceStore(),
    clock: h.clock,
    usage: h.usage,
    guard,
  });
  let sqs = 0;
  /** The key as the front door reads it now (its guard mark included). */
  const key = async (): Promise<ApiKey> => {
    const found = await keys.get(h.key.keyId);
    if (!found) throw new Error('the key is gone');
    return found;
  };
  /** Accepts `n` broadcast messages to a purchased list and marks them sent, as the sender would. */
  const sendList = async (n: number, from = 0): Promise<string[]> => {
    const ids: string[] = [];
    for (let i = from; i < from + n; i++) {
      const accepted = await acceptMessage(
        deps,
        await key(),
        sendBody({
          to: [`reader${i}@list.example`],
          stream: 'broadcast',
          listUnsubscribe: 'https://example.com/u',
        }),
      );
      const record = await h.messages.get(accepted.id);
      if (!record) throw new Error('not recorded');
      h.messages.seed({
        ...record,
        phase: 'sent',
        sesMessageId: `ses-${record.id}`,
        recipients: record.recipients.map((r) => recipient(r.address, 'sent')),
      });
      ids.push(accepted.id);
      h.clock.advance(1_000);
    }
    return ids;
  };
  /** SES's bounces for `ids`, one feedback invocation each. */
  const bounce = async (ids: readonly string[]) => {
    for (const id of ids) {
      const record = await h.messages.get(id);
      const to = record?.recipients[0]?.address ?? '';
      const response = await feedback([
        sqsRecord(bounceOf(id, to, h.clock().toISOString()), { messageId: `sqs-${++sqs}` }) as SQSRecord,
      ]);
      expect(response.batchItemFailures).toEqual([]);
      // Evaluation runs at most once a minute per scope: the bounces come back over minutes.
      h.clock.advance(61_000);
    }
  };
  const send = async (stream: 'broadcast' | 'transactional', to: string) =>
    acceptMessage(
      deps,
      await key(),
      sendBody({
        to: [to],
        stream,
        ...(stream === 'broadcast' ? { listUnsubscribe: 'https://example.com/u' } : {}),
      }),
    );
  return { h, key, sendList, bounce, send };
}

describe('scenario replay: a bad list import through the feedback function', () => {
  it('holds broadcast at 5 % bounces over 800 sends once the sample is reached, while transactional flows', async () => {
    // Prepare
    const r = rig();
    const ids = await r.sendList(800);

    // Act: 40 of the 800 bounce (5 %). The rate is taken over the whole sample: 31 bounces are
    // 3.9 %, under the 4 % that pauses broadcast; the 32nd reaches it.
    await r.bounce(ids.slice(0, 31));
    const before = holdFor((await r.key()).guard, 'broadcast', r.h.clock());
    await r.bounce(ids.slice(31, 40));

    // Assess
    expect(before).toBeUndefined();
    const hold = holdFor((await r.key()).guard, 'broadcast', r.h.clock());
    expect(hold).toMatchObject({ action: 'pauseBroadcast', signal: 'hardBounceRate', rate: 0.04 });
    expect(hold?.sample).toEqual({ sends: 800, over: 'sends', events: 32 });
    expect((await r.send('broadcast', 'late@list.example')).status).toBe('held');
    expect((await r.send('transactional', 'buyer@shop.example')).status).toBe('queued');
  });

  it('holds all of the tenant’s mail above 7 %', async () => {
    // Prepare
    const r = rig();
    const ids = await r.sendList(800);

    // Act: 64 of 800 bounce (8 %).
    await r.bounce(ids.slice(0, 64));

    // Assess
    expect(holdFor((await r.key()).guard, 'transactional', r.h.clock())).toMatchObject({ action: 'holdAll' });
    expect((await r.send('transactional', 'buyer@shop.example')).status).toBe('held');
  });

  it('counts the same bounce delivered twice once: the same event changes no counter', async () => {
    // Prepare
    const r = rig();
    const ids = await r.sendList(500);
    await r.bounce(ids.slice(0, 9));

    // Act: the ninth bounce again, then a tenth distinct one.
    await r.bounce(ids.slice(8, 9));
    const afterRepeat = holdFor((await r.key()).guard, 'broadcast', r.h.clock());
    await r.bounce(ids.slice(20, 40));

    // Assess: the repeat did not make the tenth bounce; twenty more did (29 of 500: 5.8 %).
    expect(afterRepeat).toBeUndefined();
    expect(holdFor((await r.key()).guard, 'broadcast', r.h.clock())).toMatchObject({
      action: 'pauseBroadcast',
    });
  });
});
