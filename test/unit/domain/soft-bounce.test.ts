import { describe, expect, it } from 'vitest';
import type { FeedbackDeps } from '../../../lambdas/domain/feedback/process-feedback.ts';
import { processFeedback } from '../../../lambdas/domain/feedback/process-feedback.ts';
import {
  clearSoftBounce,
  emptySoftBounceState,
  recordSoftBounce,
  SOFT_BOUNCE_EXPIRY_DAYS,
  SOFT_BOUNCE_THRESHOLD,
  softBounceCount,
  softSuppression,
} from '../../../lambdas/domain/feedback/soft-bounce.ts';
import { messageRecord, recipient, sesEventBody } from '../../support/builders.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
  testClock,
} from '../../support/fakes.ts';

const NOW = new Date('2025-03-10T12:00:00.000Z');
const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(NOW.getTime() - n * DAY);

describe('the soft-bounce counter', () => {
  it('counts each message once, however often its transient bounce is reported', () => {
    // Act
    let state = emptySoftBounceState('ana@example.org');
    state = recordSoftBounce(state, 'msg_1', daysAgo(1), NOW);
    state = recordSoftBounce(state, 'msg_1', daysAgo(1), NOW);
    state = recordSoftBounce(state, 'msg_2', daysAgo(0), NOW);

    // Assess
    expect(softBounceCount(state, NOW)).toBe(2);
  });

  it('forgets bounces older than the 7-day window', () => {
    // Prepare
    let state = emptySoftBounceState('ana@example.org');
    state = recordSoftBounce(state, 'msg_old', daysAgo(8), daysAgo(8));
    state = recordSoftBounce(state, 'msg_2', daysAgo(2), NOW);

    // Act
    const count = softBounceCount(state, NOW);

    // Assess
    expect(count).toBe(1);
  });

  it('stops counting a message that was delivered after all', () => {
    // Prepare
    let state = emptySoftBounceState('ana@example.org');
    state = recordSoftBounce(state, 'msg_1', NOW, NOW);
    state = recordSoftBounce(state, 'msg_2', NOW, NOW);

    // Act
    state = clearSoftBounce(state, 'msg_1', NOW);

    // Assess
    expect(Object.keys(state.bounces)).toEqual(['msg_2']);
  });

  it(`suppresses as soft_bounce at ${SOFT_BOUNCE_THRESHOLD} messages, for ${SOFT_BOUNCE_EXPIRY_DAYS} days`, () => {
    // Prepare
    let state = emptySoftBounceState('ana@example.org');
    state = recordSoftBounce(state, 'msg_1', daysAgo(3), NOW);
    state = recordSoftBounce(state, 'msg_2', daysAgo(2), NOW);
    const below = softSuppression(state, 'msg_2', NOW);
    state = recordSoftBounce(state, 'msg_3', NOW, NOW);

    // Act
    const s = softSuppression(state, 'msg_3', NOW);

    // Assess
    expect(below).toBeUndefined();
    expect(s).toEqual({
      address: 'ana@example.org',
      reason: 'soft_bounce',
      detail: '3 messages bounced transiently within 7 days',
      source: 'msg_3',
      createdAt: NOW.toISOString(),
      expiresAt: new Date(NOW.getTime() + 14 * DAY).toISOString(),
      severity: 1,
      evidence: { transientBounces: '3', windowDays: '7' },
    });
  });
});

describe('processFeedback and transient bounces', () => {
  function setUp() {
    const messages = new InMemoryMessageStore();
    const suppressions = new InMemorySuppressionStore();
    const softBounces = new InMemorySoftBounceStore();
    const deps: FeedbackDeps = { messages, suppressions, softBounces, clock: testClock(NOW.toISOString()) };
    for (const id of ['msg_1', 'msg_2', 'msg_3']) {
      messages.seed(
        messageRecord({
          id,
          phase: 'sent',
          sesMessageId: `ses-${id}`,
          recipients: [recipient('ana@example.org', 'sent')],
        }),
      );
    }
    return { deps, messages, suppressions, softBounces };
  }

  const transient = (id: string, subType = 'MailboxFull') =>
    sesEventBody({
      eventType: 'Bounce',
      batonMessageId: id,
      sections: {
        bounce: {
          timestamp: NOW.toISOString(),
          bounceType: 'Transient',
          bounceSubType: subType,
          feedbackId: `fb-${id}`,
          bouncedRecipients: [{ emailAddress: 'ana@example.org', status: '4.2.2' }],
        },
      },
    });
  const delivered = (id: string) =>
    sesEventBody({
      eventType: 'Delivery',
      batonMessageId: id,
      sections: {
        delivery: { timestamp: NOW.toISOString(), recipients: ['ana@example.org'], smtpResponse: '250 ok' },
      },
    });

  it('suppresses an address as soft_bounce after its third message bounces transiently', async () => {
    // Prepare
    const { deps, suppressions } = setUp();

    // Act
    const results = [];
    for (const id of ['msg_1', 'msg_2', 'msg_3']) results.push(await processFeedback(deps, transient(id)));

    // Assess
    expect(results.map((r) => r.suppressed)).toEqual([0, 0, 1]);
    expect(await suppressions.get('ana@example.org')).toMatchObject({
      reason: 'soft_bounce',
      source: 'msg_3',
    });
  });

  it('does not count the same bounce twice when SES redelivers it', async () => {
    // Prepare
    const { deps, softBounces } = setUp();

    // Act
    await processFeedback(deps, transient('msg_1'));
    await processFeedback(deps, transient('msg_1'));

    // Assess
    expect(Object.keys((await softBounces.get('ana@example.org'))?.bounces ?? {})).toEqual(['msg_1']);
  });

  it('never suppresses an out-of-office address: each transient bounce is followed by a delivery', async () => {
    // Prepare
    const { deps, suppressions, softBounces } = setUp();

    // Act
    for (const id of ['msg_1', 'msg_2', 'msg_3']) {
      await processFeedback(deps, transient(id, 'General'));
      await processFeedback(deps, delivered(id));
    }

    // Assess
    expect(await suppressions.get('ana@example.org')).toBeUndefined();
    expect((await softBounces.get('ana@example.org'))?.bounces).toEqual({});
  });

  it('does not count a transient bounce that arrives after the delivery of the same message', async () => {
    // Prepare
    const { deps, softBounces } = setUp();

    // Act
    await processFeedback(deps, delivered('msg_1'));
    await processFeedback(deps, transient('msg_1', 'General'));

    // Assess
    expect(await softBounces.get('ana@example.org')).toBeUndefined();
  });

  it('leaves a hard bounce or complaint in place: a soft bounce never weakens them', async () => {
    // Prepare
    const { deps, suppressions } = setUp();
    await suppressions.putIfStronger({
      address: 'ana@example.org',
      reason: 'complaint',
      detail: null,
      source: 'msg_0',
      createdAt: NOW.toISOString(),
      expiresAt: null,
      severity: 4,
    });

    // Act
    for (const id of ['msg_1', 'msg_2', 'msg_3']) await processFeedback(deps, transient(id));

    // Assess
    expect(await suppressions.get('ana@example.org')).toMatchObject({ reason: 'complaint', expiresAt: null });
  });
});
