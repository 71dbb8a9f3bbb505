import { addressKey } from '../address.ts';
import { hourOf, isHour } from '../guard/counters.ts';
import type { MessageRecord } from '../message.ts';
import type { GuardFeedback } from '../ports.ts';
import { onlyDelayed } from './feedback.ts';
import type { FeedbackEvent } from './ses-event.ts';

/**
 * What the abuse guard counts of one feedback event (issue 13): one entry per recipient of a
 * bounce or complaint, against the message's tenant and the key that sent it.
 *
 * - A permanent bounce is a hard bounce, except `OnAccountSuppressionList`: SES did not try the
 *   address (the account's own list refused it), and SES leaves those out of its bounce rate too.
 * - Any other bounce (transient, undetermined) is a transient bounce; a recipient SES lists as only
 *   delayed has not bounced and is not counted, as the message record does not count it bounced.
 * - The hour is the event's own; an event time that cannot be read, lies in the future (a clock
 *   ahead) or names no hour a counter can hold (year 10000) counts now: never refused for its date.
 * - The event id is the key the record remembers the event by (`seen`) plus the recipient, so a
 *   redelivered event counts once: the counters keep each id once per scope.
 */
export function guardFeedbackOf(
  event: FeedbackEvent,
  record: Pick<MessageRecord, 'tenant' | 'keyId'>,
  now: Date,
): GuardFeedback[] {
  const kind = kindOf(event);
  if (kind === undefined) return [];
  const at = eventTime(event.at, now);
  return event.recipients
    .filter((r) => event.kind !== 'bounce' || !onlyDelayed(event, r))
    .map((r) => ({
      eventId: `${event.key}:${addressKey(r.address)}`,
      tenant: record.tenant,
      ...(record.keyId === undefined ? {} : { keyId: record.keyId }),
      recipient: r.address,
      kind,
      at,
    }));
}

function kindOf(event: FeedbackEvent): GuardFeedback['kind'] | undefined {
  if (event.kind === 'complaint') return 'complaint';
  if (event.kind !== 'bounce') return undefined;
  if (event.bounceType !== 'Permanent') return 'transientBounce';
  return event.bounceSubType === 'OnAccountSuppressionList' ? undefined : 'hardBounce';
}

function eventTime(value: string, now: Date): Date {
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed) || parsed > now.getTime()) return now;
  const at = new Date(parsed);
  return isHour(hourOf(at)) ? at : now;
}
