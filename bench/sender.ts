/**
 * The sender's cost per message (issue 4's figures):
 * (i)   CPU per 10 KB message with DKIM signing: composeMime + signDkim (2048-bit RSA), and the
 *       whole sendJob (claim, suppression check, MIME, DKIM, SES, status write) with in-memory
 *       fakes and an unpaced fake SES; medians over ITERATIONS runs;
 * (ii)  the sender bundle, minified, as the stack builds it;
 * (iii) AWS requests per message for one full batch of 10, with the REAL adapters against dynalite
 *       and fauxqs provisioned from the template and the local SES stand-in, counted by an SDK
 *       middleware on every client the sender uses, the batch's daily-counter write included (the
 *       handler flushes it once per invocation).
 * Run: `npm run bench:sender` (prints tables); (i) is also part of `npm run bench` (section cpu).
 */
import { generateKeyPairSync } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoUsageStore } from '../lambdas/adapters/usage-store.ts';
import { type DkimKey, signDkim } from '../lambdas/domain/delivery/dkim.ts';
import { composeMime } from '../lambdas/domain/delivery/mime.ts';
import { type SendDeps, sendJob } from '../lambdas/domain/delivery/send.ts';
import type { MessageRecord, OutgoingMessage, SendJob } from '../lambdas/domain/message.ts';
import { validateSendRequest } from '../lambdas/domain/send/send-request.ts';
import { CONFIRMATION_WINDOW_MS, createSender } from '../lambdas/sender/app.ts';
import { logger } from '../lambdas/shared/observability.ts';
import { messageRecord, recipient, sqsRecord } from '../test/support/builders.ts';
import { credentials, documentClient, region } from '../test/support/emulators.ts';
import {
  FakeMailer,
  InMemoryApiKeys,
  InMemoryHeldJobs,
  InMemoryMessageStore,
  InMemorySuppressionStore,
  RecordingVisibility,
} from '../test/support/fakes.ts';
import { runSenderBatch } from '../test/support/sender-batch.ts';
import { type RequestTally, startSenderRig } from '../test/support/sender-rig.ts';
import { bundleKb, iterations, measure, ms, printTable, TEN_KB_MESSAGE, type Timing } from './support.ts';

const WARMUP = 100;
const BATCH = 10;

/** A fresh 2048-bit RSA DKIM key (selector `baton`), as local mode generates one. */
export function benchDkimKey(): DkimKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { selector: 'baton', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

export interface SenderCpu {
  readonly unsignedBytes: number;
  readonly signedBytes: number;
  readonly composeOnly: Timing;
  readonly composeAndSign: Timing;
  readonly wholeSendJob: Timing;
  readonly wholeRecord: Timing;
  readonly iterations: number;
}

// ---------------------------------------------------------------------------------------------
// (i) CPU per message

export async function measureSenderCpu(
  runs = iterations(2000, 1000),
  dkim = benchDkimKey(),
): Promise<SenderCpu> {
  logger.setLogLevel('SILENT');
  const ITERATIONS = runs;
  const message: OutgoingMessage = validateSendRequest(TEN_KB_MESSAGE);
  const date = new Date('2025-03-01T12:00:00.000Z');

  /** What createSender's compose does: MIME, then DKIM for the From domain. */
  const composeSigned = async (m: OutgoingMessage, id: string, at: Date) =>
    signDkim(await composeMime(m, { id, date: at }), dkim, 'example.com');

  const timed = (run: (i: number) => Promise<unknown>, before?: (i: number) => void) =>
    measure(run, { iterations: ITERATIONS, warmup: WARMUP, ...(before ? { before } : {}) });

  const unsigned = await composeMime(message, { id: 'msg_size', date });
  const signed = await composeSigned(message, 'msg_size', date);

  const composeOnly = await timed(() => composeMime(message, { id: 'msg_bench', date }));
  const composeAndSign = await timed(() => composeSigned(message, 'msg_bench', date));

  // sendJob end to end over fakes: a fresh queued record per iteration (seeded outside the timing).
  const store = new InMemoryMessageStore();
  const mailer = new FakeMailer();
  const deps: SendDeps = {
    messages: store,
    mailer,
    clock: () => new Date(),
    leaseMs: 120_000,
    confirmationWindowMs: CONFIRMATION_WINDOW_MS,
    compose: composeSigned,
  };
  const noSuppressions = new Map();
  const idOf = (i: number) => `msg_bench${i < 0 ? `w${-i}` : i}`;
  const seed = (i: number) => {
    store.seed(messageRecord({ id: idOf(i), recipients: [recipient('ana@example.org')] }));
    // Keep the fake's history from growing across iterations.
    mailer.sent.length = 0;
    mailer.attempts.length = 0;
  };
  const wholeSendJob = await timed(async (i) => {
    const outcome = await sendJob(deps, { v: 1, id: idOf(i), tenant: 'tenant-a', message }, noSuppressions);
    if (outcome !== 'sent') throw new Error(`unexpected outcome ${outcome}`);
  }, seed);

  // The sender app per record: the SQS body parsed, the batch's suppression read, sendJob.
  const appStore = new InMemoryMessageStore();
  const app = createSender({
    messages: appStore,
    suppressions: new InMemorySuppressionStore(),
    mailer,
    visibility: new RecordingVisibility(),
    // The jobs name no key (as before the guard): nothing to re-check, as for most of a real batch.
    keys: new InMemoryApiKeys(),
    held: new InMemoryHeldJobs(),
    dkim,
    clock: () => new Date(),
  });
  const bodies = new Map<number, string>();
  const wholeRecord = await timed(
    async (i) => {
      const response = await runSenderBatch(app, [sqsRecord(bodies.get(i) ?? '', { messageId: `sqs-${i}` })]);
      if (response.batchItemFailures.length > 0) throw new Error('a record failed');
    },
    (i) => {
      appStore.seed(messageRecord({ id: idOf(i), recipients: [recipient('ana@example.org')] }));
      bodies.set(i, JSON.stringify({ v: 1, id: idOf(i), tenant: 'tenant-a', message } satisfies SendJob));
      mailer.sent.length = 0;
      mailer.attempts.length = 0;
    },
  );

  return {
    unsignedBytes: unsigned.length,
    signedBytes: signed.length,
    composeOnly,
    composeAndSign,
    wholeSendJob,
    wholeRecord,
    iterations: ITERATIONS,
  };
}

// ---------------------------------------------------------------------------------------------
// (iii) AWS requests per message, one batch of 10, real adapters

export interface SenderRequests {
  readonly tallies: RequestTally[];
  readonly batch: number;
  readonly batchWallMs: number;
}

export async function measureSenderRequests(dkim = benchDkimKey()): Promise<SenderRequests> {
  logger.setLogLevel('SILENT');
  const rig = await startSenderRig({ dkim });
  // The handler's stats write, through a client counted like the sender's own.
  const statsClient = rig.counter.instrument(
    'DynamoDB',
    new DynamoDBClient({ endpoint: rig.stack.dynamo.endpoint, region, credentials }),
  );
  const usage = new DynamoUsageStore(documentClient(statsClient), rig.stack.tables.stats);
  let requests: ReturnType<typeof rig.counter.tallies>;
  let batchWallMs: number;
  try {
    const records = await rig.queueBatch('bench', BATCH);
    rig.counter.reset();
    const t0 = performance.now();
    const response = await runSenderBatch(rig.sender, records, usage);
    batchWallMs = performance.now() - t0;
    requests = rig.counter.tallies();
    if (response.batchItemFailures.length > 0) {
      throw new Error(`the batch reported failures: ${JSON.stringify(response.batchItemFailures)}`);
    }
    const sent = rig.ses.sent().length;
    if (sent !== BATCH) throw new Error(`SES accepted ${sent} of ${BATCH} messages`);
    for (const r of records) {
      const id = (JSON.parse(r.body) as SendJob).id;
      const stored: MessageRecord | undefined = await rig.records.get(id);
      if (stored?.phase !== 'sent') throw new Error(`${id} ended ${stored?.phase ?? 'missing'}`);
    }
  } finally {
    statsClient.destroy();
    await rig.stop();
  }
  return { tallies: requests, batch: BATCH, batchWallMs };
}

// ---------------------------------------------------------------------------------------------
// Report

const PURPOSE: Readonly<Record<string, string>> = {
  'DynamoDB BatchGetItem': 'suppression check: one read for every recipient of the batch (≤ 100 keys)',
  'DynamoDB UpdateItem':
    'send claim: conditional write on Baton’s message id (queued → sending); and the batch’s daily counters, one write per tenant and day',
  'DynamoDB PutItem': 'finish: status write with the claim token and version (sending → sent)',
  'DynamoDB GetItem': 'claim lost or write conflict: re-read of the record',
  'SESv2 SendEmail': 'the send itself: raw MIME, configuration set, message tags',
  'SQS ChangeMessageVisibility': 'backoff of a failed record',
};

if (import.meta.main) {
  const dkim = benchDkimKey();
  const {
    unsignedBytes,
    signedBytes,
    composeOnly,
    composeAndSign,
    wholeSendJob,
    wholeRecord,
    iterations: ITERATIONS,
  } = await measureSenderCpu(undefined, dkim);
  // (ii) bundle size, as the stack bundles the sender (see bench/api-cpu.ts for the api)
  const bundle = await bundleKb('lambdas/sender/handler.ts');
  const { tallies: requests, batchWallMs } = await measureSenderRequests(dkim);

  printTable('Sender CPU per message (median)', [
    [
      'raw MIME size (unsigned → DKIM-signed)',
      `${(unsignedBytes / 1024).toFixed(1)} KB → ${(signedBytes / 1024).toFixed(1)} KB`,
    ],
    ['composeMime, CPU', ms(composeOnly.cpuUs)],
    ['composeMime + signDkim (RSA 2048), CPU', ms(composeAndSign.cpuUs)],
    ['composeMime + signDkim, wall', ms(composeAndSign.wallUs)],
    ['sendJob whole (fakes, unpaced SES), CPU', ms(wholeSendJob.cpuUs)],
    ['sendJob whole, wall', ms(wholeSendJob.wallUs)],
    ['sender app, one record (parse + prepare + sendJob), CPU', ms(wholeRecord.cpuUs)],
    ['iterations', String(ITERATIONS)],
  ]);

  printTable('Sender bundle', [
    ['lambdas/sender/handler.ts, minified, esm, node24 (no source map)', `${bundle.toFixed(0)} KB`],
  ]);

  printTable(
    `AWS requests per message, one batch of ${BATCH} (real adapters, dynalite + fauxqs + SES stand-in)`,
    [
      ['service', 'operation', 'calls', 'HTTP', 'per message', 'for'],
      ...requests.map((t) => [
        t.service,
        t.operation,
        String(t.calls),
        String(t.attempts),
        (t.calls / BATCH).toFixed(2),
        PURPOSE[`${t.service} ${t.operation}`] ?? '',
      ]),
      [
        'total',
        '',
        String(requests.reduce((n, t) => n + t.calls, 0)),
        String(requests.reduce((n, t) => n + t.attempts, 0)),
        (requests.reduce((n, t) => n + t.calls, 0) / BATCH).toFixed(2),
        `batch wall time ${batchWallMs.toFixed(0)} ms (emulators on 127.0.0.1, unpaced)`,
      ],
    ],
  );
}
