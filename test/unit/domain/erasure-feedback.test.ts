import { describe, expect, it } from 'vitest';
import { TombstoneAwareSuppressions } from '../../../lambdas/domain/erasure/erasure.ts';
import { processFeedback } from '../../../lambdas/domain/feedback/process-feedback.ts';
import { SEVERITY } from '../../../lambdas/domain/suppression/suppression.ts';
import { messageRecord, recipient, sesEventBody } from '../../support/builders.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  testClock,
} from '../../support/fakes.ts';
import { ANA_KEY, keyOf } from '../../support/unit-erasure.ts';

const NOW = '2025-03-10T12:00:00.000Z';

function setUp() {
  const messages = new InMemoryMessageStore();
  const table = new InMemorySuppressionStore();
  const softBounces = new InMemorySoftBounceStore();
  messages.seed(
    messageRecord({
      id: 'msg_1',
      phase: 'sent',
      sesMessageId: 'ses-1',
      recipients: [recipient(ANA_KEY, 'sent')],
    }),
  );
  const deps = {
    messages,
    suppressions: new TombstoneAwareSuppressions(table, keyOf),
    softBounces,
    erasedKeyOf: keyOf,
    clock: testClock(NOW),
  };
  return { deps, messages, table, softBounces };
}

const bounce = (bounceType: string) =>
  sesEventBody({
    eventType: 'Bounce',
    batonMessageId: 'msg_1',
    sections: {
      bounce: {
        timestamp: NOW,
        bounceType,
        bounceSubType: 'General',
        feedbackId: `fb-${bounceType}`,
        bouncedRecipients: [
          {
            emailAddress: 'Ana@example.org',
            diagnosticCode: 'smtp; 550 5.1.1 <ana@example.org>: no such user',
          },
        ],
      },
    },
  });

describe('feedback about an erased recipient', () => {
  it('applies the event under the pseudonym, scrubbing the address from what it records', async () => {
    // Prepare
    const { deps, messages } = setUp();

    // Act
    await processFeedback(deps, bounce('Permanent'));

    // Assess
    const record = JSON.stringify(messages.peek('msg_1'));
    expect(record).not.toMatch(/ana@example\.org/i);
    expect(messages.peek('msg_1')?.recipients[0]).toMatchObject({ address: ANA_KEY, status: 'bounced' });
  });

  it('recovers a send whose SES answer was lost for an erased recipient, matched by its pseudonym', async () => {
    // Prepare
    const { deps, messages } = setUp();
    messages.write(
      messageRecord({ id: 'msg_1', phase: 'sending', recipients: [recipient(ANA_KEY, 'queued')] }),
    );

    // Act
    await processFeedback(
      deps,
      sesEventBody({
        eventType: 'Send',
        batonMessageId: 'msg_1',
        destination: ['Ana@example.org'],
        sections: { send: {} },
      }),
    );

    // Assess
    expect(messages.peek('msg_1')).toMatchObject({
      phase: 'sent',
      recipients: [{ address: ANA_KEY, status: 'sent' }],
    });
    expect(JSON.stringify(messages.peek('msg_1'))).not.toMatch(/ana@example\.org/i);
  });

  it('strengthens the tombstone instead of writing a suppression under the address', async () => {
    // Prepare
    const { deps, table } = setUp();
    await table.put({
      address: ANA_KEY,
      reason: 'manual',
      detail: 'erased',
      source: 'api',
      createdAt: NOW,
      expiresAt: null,
      severity: SEVERITY.manual,
    });

    // Act
    await processFeedback(deps, bounce('Permanent'));

    // Assess
    expect(await table.get('ana@example.org')).toBeUndefined();
    const tombstone = await table.get(ANA_KEY);
    expect(tombstone?.reason).toBe('hard_bounce');
    expect(JSON.stringify(tombstone)).not.toMatch(/ana@example\.org/i);
  });

  it('keeps no soft-bounce counter for an erased address', async () => {
    // Prepare
    const { deps, softBounces } = setUp();

    // Act
    await processFeedback(deps, bounce('Transient'));

    // Assess
    expect(softBounces.states.size).toBe(0);
  });
});
