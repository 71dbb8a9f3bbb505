import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoMessageStore } from '../../lambdas/adapters/message-store.ts';
import { DynamoSoftBounceStore } from '../../lambdas/adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../../lambdas/adapters/suppression-store.ts';
import { normaliseAddress } from '../../lambdas/domain/address.ts';
import { processFeedback } from '../../lambdas/domain/feedback/process-feedback.ts';
import { emptySoftBounceState, recordSoftBounce } from '../../lambdas/domain/feedback/soft-bounce.ts';
import { operatorSuppression } from '../../lambdas/domain/suppression/suppression.ts';
import { ConflictError } from '../../lambdas/shared/errors.ts';
import { messageRecord, recipient } from '../support/builders.ts';
import type { ProvisionedStack } from '../support/emulators.ts';
import { fixtureJson } from '../support/fixtures.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const NOW = new Date('2030-01-10T12:00:00.000Z');

describe('DynamoSoftBounceStore against dynalite (Suppressions table from the template)', () => {
  let stack: ProvisionedStack;
  let store: DynamoSoftBounceStore;

  withProvisionedStack((started) => {
    stack = started;
    store = new DynamoSoftBounceStore(stack.clients.doc, stack.tables.suppressions);
  });

  it('stores the counter under softbounce:<address> (a key no address can have) with a TTL one window after the latest bounce', async () => {
    // Prepare
    const state = recordSoftBounce(emptySoftBounceState('ana@example.org'), 'msg_1', NOW, NOW);

    // Act
    await store.put(state);
    const item = await stack.clients.doc.send(
      new GetCommand({
        TableName: stack.tables.suppressions,
        Key: { address: 'softbounce:ana@example.org' },
      }),
    );

    // Assess
    expect(item.Item).toEqual({
      address: 'softbounce:ana@example.org',
      bounces: { msg_1: NOW.getTime() },
      version: 1,
      expiresAt: NOW.getTime() / 1000 + 7 * 86_400,
    });
    expect(await store.get('ana@example.org')).toEqual({ ...state, version: 1 });
  });

  it('keeps the counter out of reach of every address: a suppression of softbounce#carla@… neither overwrites nor hides it', async () => {
    // Prepare: carla has a counter; `softbounce#carla@example.org` is itself a valid address.
    const suppressions = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions);
    const state = recordSoftBounce(emptySoftBounceState('carla@example.org'), 'msg_1', NOW, NOW);
    await store.put(state);
    const lookalike = 'softbounce#carla@example.org';
    expect(normaliseAddress(lookalike)).toBe(lookalike);

    // Act
    await suppressions.put(operatorSuppression(lookalike, 'manual', 'look-alike', NOW));

    // Assess: the counter is intact, and the look-alike is an ordinary, listed suppression.
    expect(await store.get('carla@example.org')).toEqual({ ...state, version: 1 });
    expect((await suppressions.get(lookalike))?.reason).toBe('manual');
    expect(await suppressions.get('carla@example.org')).toBeUndefined();
    const listed: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await suppressions.list(1000, cursor);
      listed.push(...page.items.map((s) => s.address));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    expect(listed).toContain(lookalike);
    expect(listed).not.toContain('carla@example.org');
  });

  it('lets a bounce of the address softbounce#dora@… replace a counter left under that key by the old scheme', async () => {
    // Prepare: the old scheme kept dora's counter under a key that is itself a valid address.
    const suppressions = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions);
    const lookalike = 'softbounce#dora@example.org';
    await stack.clients.doc.send(
      new PutCommand({
        TableName: stack.tables.suppressions,
        Item: { address: lookalike, bounces: { msg_1: NOW.getTime() }, version: 1 },
      }),
    );
    const before = await suppressions.get(lookalike);

    // Act
    const wrote = await suppressions.putIfStronger({
      address: lookalike,
      reason: 'hard_bounce',
      detail: null,
      source: 'msg_2',
      createdAt: NOW.toISOString(),
      expiresAt: null,
      severity: 3,
    });

    // Assess: the counter never counted as a suppression, and the bounce is recorded.
    expect(before).toBeUndefined();
    expect(wrote).toBe(true);
    expect((await suppressions.get(lookalike))?.reason).toBe('hard_bounce');
  });

  it('refuses a write based on a stale version, and a second first write', async () => {
    // Prepare
    const first = recordSoftBounce(emptySoftBounceState('bob@example.org'), 'msg_1', NOW, NOW);
    await store.put(first);

    // Act / Assess
    await expect(store.put(first)).rejects.toThrow(ConflictError);
    const current = await store.get('bob@example.org');
    if (!current) throw new Error('missing');
    await store.put(recordSoftBounce(current, 'msg_2', NOW, NOW));
    await expect(store.put(recordSoftBounce(current, 'msg_3', NOW, NOW))).rejects.toThrow(ConflictError);
  });

  it('suppresses an address after three fixture MailboxFull bounces of three messages, through processFeedback', async () => {
    // Prepare: the real-modified relay capture, Transient/MailboxFull, re-addressed to three of our messages
    const messages = new DynamoMessageStore(stack.clients.doc, stack.tables.messages);
    const suppressions = new DynamoSuppressionStore(stack.clients.doc, stack.tables.suppressions);
    const envelope = fixtureJson<{ Message: string }>(
      'ses/sns-http_real-modified_relay_soft-bounce-transient-MailboxFull.json',
    );
    const notification = JSON.parse(envelope.Message) as {
      mail: { messageId: string };
      bounce: { bouncedRecipients: Array<{ emailAddress: string }>; feedbackId: string; timestamp: string };
    };
    const address = notification.bounce.bouncedRecipients[0]?.emailAddress ?? '';
    const deps = { messages, suppressions, softBounces: store, clock: () => NOW };
    const results = [];
    for (const n of [1, 2, 3]) {
      const id = `msg_soft${n}`;
      await messages.create(
        messageRecord({
          id,
          phase: 'sent',
          sesMessageId: `ses-soft-${n}`,
          recipients: [recipient(address, 'sent')],
        }),
      );
      notification.mail.messageId = `ses-soft-${n}`;
      notification.bounce.feedbackId = `fb-${n}`;
      // Bounces count in the window of their own time: the capture's 2022 timestamp would not.
      notification.bounce.timestamp = NOW.toISOString();

      // Act
      results.push(await processFeedback(deps, JSON.stringify(notification)));
    }

    // Assess
    expect(results.map((r) => [r.event.bounceType, r.event.bounceSubType, r.suppressed])).toEqual([
      ['Transient', 'MailboxFull', 0],
      ['Transient', 'MailboxFull', 0],
      ['Transient', 'MailboxFull', 1],
    ]);
    expect(await suppressions.get(address.toLowerCase())).toMatchObject({
      reason: 'soft_bounce',
      source: 'msg_soft3',
      expiresAt: new Date(NOW.getTime() + 14 * 86_400_000).toISOString(),
    });
  });
});
