/**
 * The feedback handler's cost per event (issue 5's figures):
 * (i)  CPU per event, parse + apply, median over ITERATIONS runs, with in-memory stores: a
 *      Delivery (the common case), a permanent Bounce (suppression), a Complaint, a transient
 *      Bounce (soft-bounce counter);
 * (ii) DynamoDB requests per event with the REAL adapters (dynalite provisioned from the
 *      template), counted by an SDK middleware, for the same kinds, including the batch's stats
 *      write for a batch of 10 deliveries.
 * Run: `npm run bench:feedback` (prints tables); (i) is also part of `npm run bench` (section cpu).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoMessageStore } from '../lambdas/adapters/message-store.ts';
import { DynamoSoftBounceStore } from '../lambdas/adapters/soft-bounce-store.ts';
import { DynamoSuppressionStore } from '../lambdas/adapters/suppression-store.ts';
import { DynamoUsageStore } from '../lambdas/adapters/usage-store.ts';
import { erasedKeyFunction, TombstoneAwareSuppressions } from '../lambdas/domain/erasure/erasure.ts';
import { type FeedbackDeps, processFeedback } from '../lambdas/domain/feedback/process-feedback.ts';
import type { MessageRecord } from '../lambdas/domain/message.ts';
import { StatTally } from '../lambdas/domain/reporting/stats.ts';
import { createFeedbackConsumer } from '../lambdas/feedback/app.ts';
import { logger } from '../lambdas/shared/observability.ts';
import { messageRecord, recipient, sesEventBody, sqsRecord } from '../test/support/builders.ts';
import { credentials, documentClient, region, startProvisionedStack } from '../test/support/emulators.ts';
import {
  InMemoryMessageStore,
  InMemorySoftBounceStore,
  InMemorySuppressionStore,
} from '../test/support/fakes.ts';
import { RequestCounter } from '../test/support/sender-rig.ts';
import { iterations, measure, ms, printTable } from './support.ts';

const WARMUP = 100;
const keyOf = erasedKeyFunction('bench-erasure-secret-0123456789abcdefghij');

export type Kind = 'delivery' | 'send' | 'hard bounce' | 'complaint' | 'transient bounce';
/** The kinds measured: Delivery and Send are the common ones (both published for every message). */
export const KINDS: Kind[] = ['delivery', 'send', 'hard bounce', 'complaint', 'transient bounce'];

function eventFor(kind: Kind, id: string, address: string): string {
  const at = new Date().toISOString();
  switch (kind) {
    case 'delivery':
      return sesEventBody({
        eventType: 'Delivery',
        batonMessageId: id,
        sections: {
          delivery: { timestamp: at, recipients: [address], smtpResponse: '250 2.6.0 Message received' },
        },
      });
    case 'send':
      return sesEventBody({
        eventType: 'Send',
        batonMessageId: id,
        destination: [address],
        sections: { send: {} },
      });
    case 'complaint':
      return sesEventBody({
        eventType: 'Complaint',
        batonMessageId: id,
        sections: {
          complaint: {
            timestamp: at,
            feedbackId: `fb-${id}`,
            complaintFeedbackType: 'abuse',
            complainedRecipients: [{ emailAddress: address }],
          },
        },
      });
    default:
      return sesEventBody({
        eventType: 'Bounce',
        batonMessageId: id,
        sections: {
          bounce: {
            timestamp: at,
            feedbackId: `fb-${id}`,
            bounceType: kind === 'hard bounce' ? 'Permanent' : 'Transient',
            bounceSubType: kind === 'hard bounce' ? 'General' : 'MailboxFull',
            bouncedRecipients: [
              { emailAddress: address, status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
            ],
          },
        },
      });
  }
}

function sentRecord(id: string, address: string): MessageRecord {
  const now = new Date().toISOString();
  return messageRecord({
    id,
    phase: 'sent',
    sesMessageId: `ses-${id}`,
    createdAt: now,
    updatedAt: now,
    recipients: [recipient(address, 'sent', { updatedAt: now })],
    events: [
      { type: 'accepted', at: now },
      { type: 'sent', at: now, sesMessageId: `ses-${id}` },
    ],
  });
}

// (i) CPU per event --------------------------------------------------------------------------------
/** Median CPU (µs) of processFeedback per event kind, with in-memory stores. */
export async function measureFeedbackCpu(runs = iterations(2000, 1000)): Promise<Record<Kind, number>> {
  logger.setLogLevel('SILENT');
  const ITERATIONS = runs;
  const cpu = {} as Record<Kind, number>;
  for (const kind of KINDS) {
    const messages = new InMemoryMessageStore();
    const deps: FeedbackDeps = {
      messages,
      suppressions: new TombstoneAwareSuppressions(new InMemorySuppressionStore(), keyOf),
      softBounces: new InMemorySoftBounceStore(),
      erasedKeyOf: keyOf,
      clock: () => new Date(),
    };
    const id = (i: number) => `msg_${kind.replace(' ', '')}${i + WARMUP}`;
    const address = (i: number) => `user${i + WARMUP}@example.org`;
    const bodies = new Map<number, string>();
    const { cpuUs } = await measure((i) => processFeedback(deps, bodies.get(i) ?? ''), {
      iterations: ITERATIONS,
      warmup: WARMUP,
      // The message the event is about exists, and the event is built, before the timing starts.
      before: (i) => {
        messages.seed(sentRecord(id(i), address(i)));
        bodies.set(i, eventFor(kind, id(i), address(i)));
      },
    });
    cpu[kind] = cpuUs;
  }
  return cpu;
}

// (ii) DynamoDB requests per event ------------------------------------------------------------------
export async function measureFeedbackRequests(): Promise<string[][]> {
  logger.setLogLevel('SILENT');
  const stack = await startProvisionedStack();
  const counter = new RequestCounter();
  const dynamo = counter.instrument(
    'DynamoDB',
    new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials }),
  );
  const doc = documentClient(dynamo);
  const setup = new DynamoMessageStore(stack.clients.doc, stack.tables.messages);
  const requestRows: string[][] = [];
  for (const kind of KINDS) {
    const stats = new StatTally();
    const usage = new DynamoUsageStore(doc, stack.tables.stats);
    const consume = createFeedbackConsumer(
      {
        messages: new DynamoMessageStore(doc, stack.tables.messages),
        suppressions: new TombstoneAwareSuppressions(
          new DynamoSuppressionStore(doc, stack.tables.suppressions),
          keyOf,
        ),
        softBounces: new DynamoSoftBounceStore(doc, stack.tables.suppressions),
        erasedKeyOf: keyOf,
        clock: () => new Date(),
      },
      stats,
    );
    const bodies: string[] = [];
    for (let n = 0; n < 10; n++) {
      const id = `msg_req${kind.replace(' ', '')}${n}`;
      const address = `req${kind.replace(' ', '')}${n}@example.org`;
      await setup.create(sentRecord(id, address));
      bodies.push(eventFor(kind, id, address));
    }
    counter.reset();
    for (const [i, body] of bodies.entries()) await consume(sqsRecord(body, { messageId: `sqs-${i}` }));
    await stats.flush(usage);
    const tallies = counter.tallies();
    const per = (op: string) =>
      (tallies.filter((t) => t.operation === op).reduce((a, t) => a + t.calls, 0) / 10).toFixed(2);
    const total = (tallies.reduce((a, t) => a + t.calls, 0) / 10).toFixed(2);
    requestRows.push([kind, per('GetItem'), per('PutItem'), per('UpdateItem'), per('Query'), total]);
  }
  await stack.stop();
  return requestRows;
}

if (import.meta.main) {
  const ITERATIONS = iterations(2000, 1000);
  const cpu = await measureFeedbackCpu(ITERATIONS);
  const requestRows = await measureFeedbackRequests();
  printTable('Feedback CPU per event (median, parse + apply, in-memory stores)', [
    ['event', 'CPU'],
    ...KINDS.map((kind) => [kind, ms(cpu[kind])]),
  ]);
  printTable(
    'DynamoDB requests per event (real adapters on dynalite, batches of 10 tagged events, stats write included)',
    [['event', 'GetItem', 'PutItem', 'UpdateItem', 'Query', 'total'], ...requestRows],
  );
  console.log(`\niterations ${ITERATIONS}`);
}
