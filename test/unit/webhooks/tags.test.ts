/** A message's tags on its record (issue 14): every webhook event carries them, erasure keeps them. */
import { describe, expect, it } from 'vitest';
import { eraseFromRecord } from '../../../lambdas/domain/erasure/erasure.ts';
import { webhookEventsOf } from '../../../lambdas/domain/webhooks/events.ts';
import { eventsOfChange } from '../../../lambdas/domain/webhooks/produce.ts';
import { messageRecord, recipient } from '../../support/builders.ts';

const TAGS = { campaign: 'spring' };

describe('tags on the message record', () => {
  it('stay when a recipient is erased, and the events then name the pseudonym', () => {
    // Prepare
    const keyOf = (address: string) => `erased:${address.length}`;
    const record = messageRecord({ tags: TAGS, recipients: [recipient('ana@example.org')] });

    // Act
    const erased = eraseFromRecord(record, keyOf('ana@example.org'), keyOf);

    // Assess
    expect(erased?.tags).toEqual(TAGS);
    expect(webhookEventsOf(erased ?? record, 0, erased?.tags ?? {}).map((e) => e.payload.data)).toEqual([
      expect.objectContaining({ recipient: 'erased:15', tags: TAGS }),
    ]);
  });

  it('are an empty object in the events of a record written before tags were kept', () => {
    // Act
    const events = eventsOfChange({ after: messageRecord() });

    // Assess
    expect(events.map((e) => (e.payload.data as { tags: unknown }).tags)).toEqual([{}]);
  });

  it('produce the events of the appended entries only', () => {
    // Prepare
    const before = messageRecord({ tags: TAGS });
    const after = { ...before, events: [...before.events, { type: 'sent' as const, at: before.createdAt }] };

    // Act
    const events = eventsOfChange({ before, after });

    // Assess
    expect(events.map((e) => [e.payload.type, (e.payload.data as { sequence: number }).sequence])).toEqual([
      ['message.sent', 1],
    ]);
  });
});
