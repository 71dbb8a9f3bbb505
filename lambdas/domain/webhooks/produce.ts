/**
 * What every producer of message events does (issue 14): after a write, the events of the timeline
 * entries it appended, handed to the publisher. Never before the write, never failing it.
 */
import type { MessageRecord } from '../message.ts';
import { type WebhookEvent, webhookEventsOf } from './events.ts';
import type { WebhookPublisher } from './ports.ts';

/** One write of a message record: `before` absent for a new record (its every entry is new). */
export interface RecordChange {
  readonly before?: MessageRecord | undefined;
  readonly after: MessageRecord;
}

/**
 * The webhook events of the entries `change` appended to the timeline, carrying the message's
 * tags. An entry that cannot be made an event (a corrupt record) is skipped with its record, not
 * thrown: the write it describes is done.
 */
export function eventsOfChange(change: RecordChange | undefined): WebhookEvent[] {
  if (change === undefined) return [];
  try {
    return webhookEventsOf(change.after, change.before?.events.length ?? 0, change.after.tags ?? {});
  } catch {
    return [];
  }
}

/**
 * Every event of the record's timeline again, for a producer that meets work already done (a
 * redelivered job or SES event). The run that did it may have died after its write and before it
 * published its batch's events, which nothing else would bring back. The ids are the same as the
 * first time, so a receiver that got them drops the repeats (at least once, never lost).
 */
export async function republishRecord(
  publisher: WebhookPublisher | undefined,
  record: MessageRecord,
): Promise<void> {
  await publishChanges(publisher, [{ after: record }]);
}

/**
 * Hands the events of `changes` to `publisher` (absent: nothing is published). Never throws: the
 * publisher promises as much, and a webhook must not fail or repeat the state change regardless.
 */
export async function publishChanges(
  publisher: WebhookPublisher | undefined,
  changes: ReadonlyArray<RecordChange | undefined>,
): Promise<void> {
  if (publisher === undefined) return;
  await publishEvents(publisher, changes.flatMap(eventsOfChange));
}

/** Hands `events` to `publisher`, if any; never throws. */
export async function publishEvents(
  publisher: WebhookPublisher | undefined,
  events: readonly WebhookEvent[],
): Promise<void> {
  if (publisher === undefined || events.length === 0) return;
  try {
    await publisher.publish(events);
  } catch {
    // The publisher reports its own failures (WebhookPublishFailures); the state change stands.
  }
}

/**
 * A publisher that keeps what it is handed until `flush`: a queue consumer collects the events of
 * one invocation's batch and publishes them once at its end (one log write and one SendMessageBatch
 * per ten jobs, rather than per message).
 */
export class WebhookBuffer implements WebhookPublisher {
  #events: WebhookEvent[] = [];

  async publish(events: readonly WebhookEvent[]): Promise<void> {
    this.#events.push(...events);
  }

  get size(): number {
    return this.#events.length;
  }

  /** Publishes what was collected to `to` (absent: drops it) and empties the buffer; never throws. */
  async flush(to: WebhookPublisher | undefined): Promise<void> {
    const events = this.#events;
    this.#events = [];
    await publishEvents(to, events);
  }
}
