import '../../support/quiet-powertools.ts';
import { describe, expect, it } from 'vitest';
import { HOLD_DAYS, markHeld } from '../../../lambdas/domain/guard/hold.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { Route } from '../../../lambdas/shared/names.ts';
import { messageRecord, T0 } from '../../support/builders.ts';
import { guardDecisionFor } from '../../support/guard.ts';
import { apiHarness } from '../../support/harness.ts';
import { httpEvent, jsonOf } from '../../support/http-events.ts';

const DAY_MS = 86_400_000;

describe('GET /v1/messages/{id} of a message the abuse guard holds', () => {
  function setUp() {
    const harness = apiHarness();
    const reason = 'hard-bounce rate 5 % over 800 sends';
    const held = markHeld(
      messageRecord({ stream: 'broadcast' }),
      guardDecisionFor('pauseBroadcast', { reason }, new Date(T0)),
      new Date(T0),
    ) as MessageRecord;
    harness.messages.seed(held);
    const get = async () =>
      jsonOf(
        await harness.api(
          httpEvent(Route.getMessage, { token: harness.token, pathParameters: { id: 'msg_1' } }),
        ),
      );
    return { ...harness, get, reason };
  }

  it('says held, for the message and each recipient, with the reason', async () => {
    // Prepare
    const { get, clock, reason } = setUp();
    clock.advance(DAY_MS);

    // Act
    const view = await get();

    // Assess
    expect(view).toMatchObject({ status: 'held', recipients: [{ status: 'held', reason }] });
  });

  it('says failed, with the reason, once the hold has run out unreleased', async () => {
    // Prepare
    const { get, clock, reason } = setUp();
    clock.advance(HOLD_DAYS * DAY_MS);

    // Act
    const view = await get();

    // Assess
    expect(view).toMatchObject({
      status: 'failed',
      recipients: [
        {
          status: 'failed',
          reason: `held by the abuse guard for ${HOLD_DAYS} days and not released (${reason})`,
        },
      ],
    });
  });
});
