/** Webhook events produced by the guard's operations on held mail (issue 14): release, cancel, expiry. */
import { describe, expect, it } from 'vitest';
import { HOLD_DAYS } from '../../../lambdas/domain/guard/hold.ts';
import { cancelHeld, releaseHeld } from '../../../lambdas/domain/guard/operations.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import type { WebhookPublisher } from '../../../lambdas/domain/webhooks/ports.ts';
import { recipient } from '../../support/builders.ts';
import { guardDecision } from '../../support/guard.ts';
import { heldMailRig } from '../../support/held-mail.ts';
import { messageEventRows, RecordingWebhookPublisher } from '../../support/webhooks.ts';

const TAGS = { campaign: 'spring' };

function rig(webhooks: WebhookPublisher = new RecordingWebhookPublisher()) {
  const { deps, clock, messages, queue, hold: holdAs } = heldMailRig({}, webhooks);
  const pacing = { ratePerSecond: { transactional: 100, broadcast: 100 }, sleep: async () => undefined };
  const hold = (id: string): Promise<MessageRecord> =>
    holdAs(id, 'broadcast', guardDecision(), {
      tags: TAGS,
      recipients: [recipient('ana@example.org'), recipient('bob@example.org')],
    });
  return { deps, clock, messages, queue, pacing, hold };
}

describe('events produced by operations on held mail', () => {
  it('produces message.released per recipient once a release queued the message, carrying the hold’s signal', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, pacing, hold } = rig(publisher);
    await hold('msg_1');

    // Act
    await releaseHeld(deps, 'tenant-a', { all: true }, 'list cleaned', pacing);
    await releaseHeld(deps, 'tenant-a', { all: true }, 'list cleaned', pacing);

    // Assess
    expect(messageEventRows(publisher.events)).toEqual([
      ['message.released', 'msg_1', 'ana@example.org', 2],
      ['message.released', 'msg_1', 'bob@example.org', 2],
    ]);
    expect(publisher.events[0]?.payload.data).toMatchObject({
      tags: TAGS,
      stream: 'broadcast',
      reason: 'list cleaned',
      signal: guardDecision().signal,
    });
  });

  it('publishes the events of one release once, for all its messages', async () => {
    // Prepare
    const calls: number[] = [];
    const { deps, pacing, hold } = rig({ publish: async (events) => void calls.push(events.length) });
    await hold('msg_1');
    await hold('msg_2');

    // Act
    await releaseHeld(deps, 'tenant-a', { all: true }, 'checked', pacing);

    // Assess
    expect(calls).toEqual([4]);
  });

  it('produces nothing for a release the queue refused: the message stays held', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, queue, pacing, hold } = rig(publisher);
    await hold('msg_1');
    queue.failing.add('msg_1');

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'checked', pacing);

    // Assess
    expect(result.counts.held).toBe(1);
    expect(publisher.events).toEqual([]);
  });

  it('produces message.failed per recipient of a cancelled message', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, hold } = rig(publisher);
    await hold('msg_1');

    // Act
    await cancelHeld(deps, 'tenant-a', { all: true }, 'spam run');
    await cancelHeld(deps, 'tenant-a', { all: true }, 'spam run');

    // Assess
    expect(messageEventRows(publisher.events)).toEqual([
      ['message.failed', 'msg_1', 'ana@example.org', 2],
      ['message.failed', 'msg_1', 'bob@example.org', 2],
    ]);
    expect(publisher.events[0]?.payload.data).toMatchObject({ reason: 'cancelled by an operator: spam run' });
  });

  it('produces message.failed for a message whose hold expired before the release', async () => {
    // Prepare
    const publisher = new RecordingWebhookPublisher();
    const { deps, clock, pacing, hold } = rig(publisher);
    await hold('msg_1');
    clock.advance(HOLD_DAYS * 86_400_000 + 1);

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'too late', pacing);

    // Assess
    expect(result.counts.expired).toBe(1);
    expect(messageEventRows(publisher.events).map((e) => e[0])).toEqual(['message.failed', 'message.failed']);
  });

  it('releases the message once, whatever the publisher does', async () => {
    // Prepare
    const { deps, queue, messages, pacing, hold } = rig({
      publish: async () => {
        throw new Error('publisher broke');
      },
    });
    await hold('msg_1');

    // Act
    const result = await releaseHeld(deps, 'tenant-a', { all: true }, 'checked', pacing);

    // Assess
    expect(result.counts.released).toBe(1);
    expect(queue.jobs).toHaveLength(1);
    expect(messages.peek('msg_1')?.phase).toBe('queued');
  });
});
