/**
 * Section webhooks (issue 14): what a webhook event costs, and how long it takes to arrive.
 *
 * Cost: the producer's fan-out (WebhookFanout over the real DynamoWebhookStore and SqsWebhookQueue)
 * and the delivery (deliverJob over the real store, DynamoEndpointStateStore and WebhookHttpPoster)
 * run on dynalite and fauxqs against a real receiver on 127.0.0.1, with every DynamoDB request unit
 * and SQS request counted on the wire. The Lambda side is modelled: the event source mapping's
 * receive and batched delete per batch of 10, one invocation per batch, and a batch's billed time as
 * the receiver's answer time (RECEIVER_MS, an assumption: the jobs of a batch run concurrently) plus
 * the measured CPU of its 10 jobs. dynalite bills nothing for a failed condition; DynamoDB bills 1 WRU,
 * added here.
 *
 * Latency: local mode (the real functions and queues), from each event's state change (its payload's
 * `timestamp`) to the first attempt reaching the receiver, over every event of WEBHOOK_BENCH_MESSAGES
 * messages to the simulator's success address.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { WebhookHttpPoster } from '../../lambdas/adapters/webhook-http.ts';
import { SqsWebhookQueue } from '../../lambdas/adapters/webhook-queue.ts';
import { DynamoEndpointStateStore } from '../../lambdas/adapters/webhook-state-store.ts';
import { DynamoWebhookStore } from '../../lambdas/adapters/webhook-store.ts';
import { deliverJob } from '../../lambdas/domain/webhooks/deliver.ts';
import type { WebhookDeliveryJob } from '../../lambdas/domain/webhooks/endpoint.ts';
import { webhookEventsOf } from '../../lambdas/domain/webhooks/events.ts';
import { registerEndpoint } from '../../lambdas/domain/webhooks/operations.ts';
import { CachedWebhookDirectory, WebhookFanout } from '../../lambdas/domain/webhooks/publish.ts';
import { createWebhookRequest } from '../../lambdas/domain/webhooks/requests.ts';
import { startDynamo } from '../../local/emulators/dynamodb.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import { messageRecord } from '../../test/support/builders.ts';
import {
  createPkSkTable,
  credentials,
  documentClient,
  region,
  sqsClient,
} from '../../test/support/emulators.ts';
import { WebhookReceiver } from '../../test/support/webhooks.ts';
import { cpuOnLambdaMs, loadPrices } from '../cost.ts';
import { countCapacity } from '../support.ts';
import { measureWebhookLatency, type WebhookLatency } from '../webhook-latency.ts';
import type { Row, Section } from './types.ts';

/** The receiver's answer time the Lambda cost assumes (a customer's endpoint, ms). */
const RECEIVER_MS = 100;
const MEMORY_MB = 256;
const BATCH = 10;
const EVENTS = 200;

interface Usage {
  wru: number;
  rru: number;
  sqs: number;
}

async function measureCost() {
  const dynamo = await startDynamo({ port: 0 });
  const fauxqs = await startSqsSns({ port: 0, region });
  const receiver = await WebhookReceiver.start();
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
  const doc = documentClient(client);
  const sqs = sqsClient(fauxqs.endpoint);
  const usage: Usage = { wru: 0, rru: 0, sqs: 0 };
  countCapacity(doc, usage);
  sqs.middlewareStack.add(
    (next) => async (args) => {
      usage.sqs += 1;
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  try {
    await createPkSkTable(client, 'Webhooks');
    const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'webhooks' }))).QueueUrl as string;
    const clock = () => new Date();
    const store = new DynamoWebhookStore(doc, 'Webhooks');
    const queue = new SqsWebhookQueue(sqs, queueUrl);
    // Registered as the api registers one (loopback allowed, as in local mode); its secret signs.
    const { secret } = await registerEndpoint(
      { store, queue, allowLoopbackHttp: true, clock },
      'acme-shop',
      createWebhookRequest({ url: receiver.url(), description: 'bench' }),
    );
    receiver.secrets = [secret];
    const fanout = new WebhookFanout({
      directory: new CachedWebhookDirectory(store, { seconds: 60, clock }),
      log: store,
      queue,
      clock,
      onError: (error) => {
        throw error;
      },
    });
    // A one-recipient message's `accepted` entry: one message.queued event each.
    const events = Array.from({ length: EVENTS }, (_, i) =>
      webhookEventsOf(messageRecord({ id: `msg_bench${i}`, tenant: 'acme-shop' }), 0, { order: `o-${i}` }),
    ).flat();
    const reset = () => Object.assign(usage, { wru: 0, rru: 0, sqs: 0 });

    // Produced as a feedback or sender batch publishes them: 10 events per publish.
    reset();
    for (let i = 0; i < events.length; i += BATCH) await fanout.publish(events.slice(i, i + BATCH));
    const producedBatch = { ...usage };
    // Produced one event per publish (a single message accepted over the api).
    reset();
    for (const e of events) await fanout.publish([e]);
    const producedSingle = { ...usage };

    // Delivered: drain the queue (both productions: 2 × EVENTS jobs), each job as the function runs it.
    const jobs: WebhookDeliveryJob[] = [];
    for (;;) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
      if (!out.Messages?.length) break;
      for (const m of out.Messages) jobs.push(JSON.parse(m.Body as string) as WebhookDeliveryJob);
    }
    const deps = {
      endpoints: store,
      state: new DynamoEndpointStateStore(doc, 'Webhooks', clock),
      poster: new WebhookHttpPoster({ allowLoopback: true }),
      log: store,
      queue,
      publisher: fanout,
      clock,
      random: Math.random,
      leaseId: () => crypto.randomUUID(),
    };
    reset();
    const cpu0 = process.cpuUsage();
    let delivered = 0;
    for (const job of jobs) {
      const decision = await deliverJob(job, deps);
      if ('done' in decision && decision.attempt?.outcome === 'success') delivered++;
    }
    const cpu = process.cpuUsage(cpu0);
    const deliveredUsage = { ...usage };
    const verified = receiver.verified().length;
    return {
      jobs: jobs.length,
      delivered,
      verified,
      producedBatch: per(producedBatch, EVENTS),
      producedSingle: per(producedSingle, EVENTS),
      delivery: per(deliveredUsage, jobs.length),
      cpuMsPerJob: (cpu.user + cpu.system) / 1000 / jobs.length,
    };
  } finally {
    client.destroy();
    sqs.destroy();
    await receiver.close();
    await fauxqs.stop();
    await dynamo.stop();
  }
}

function per(u: Usage, n: number): Usage {
  return { wru: u.wru / n, rru: u.rru / n, sqs: u.sqs / n };
}

export const section: Section = {
  name: 'webhooks',
  title: 'webhook events: cost per 1M (real adapters on the emulators) and local-mode latency',
  async run() {
    const m = await measureCost();
    const prices = loadPrices().prices;
    const usd = (key: keyof typeof prices) => prices[key].usd;
    // The event source mapping: one receive and one batched delete per batch of 10.
    const pollRequests = 2 / BATCH;
    const invocations = 1 / BATCH;
    const lambdaMsPerEvent = (RECEIVER_MS + cpuOnLambdaMs(m.cpuMsPerJob, MEMORY_MB) * BATCH) / BATCH;
    const cost = (mode: 'batch' | 'single') => {
      const produced = mode === 'batch' ? m.producedBatch : m.producedSingle;
      const parts = {
        dynamoWrites: (produced.wru + m.delivery.wru) * usd('dynamoWriteRequestUnitPerMillion'),
        dynamoReads: (produced.rru + m.delivery.rru) * usd('dynamoReadRequestUnitPerMillion'),
        sqs: (produced.sqs + m.delivery.sqs + pollRequests) * usd('sqsStandardRequestPerMillion'),
        lambdaRequests: invocations * usd('lambdaArmRequestPerMillion'),
        lambdaDuration: (lambdaMsPerEvent / 1000) * (MEMORY_MB / 1024) * 1e6 * usd('lambdaArmGbSecond'),
      };
      return { total: Object.values(parts).reduce((a, b) => a + b, 0), parts };
    };
    const fmt = (u: Usage) => `${u.wru.toFixed(2)} WRU, ${u.rru.toFixed(2)} RRU, ${u.sqs.toFixed(2)} SQS`;
    const rows: Row[] = [
      {
        section: 'webhooks',
        figure: 'webhook requests per event',
        value: Number((m.producedBatch.wru + m.delivery.wru).toFixed(2)),
        unit: 'WRU',
        note:
          `produced in batches of 10: ${fmt(m.producedBatch)}; one per publish: ${fmt(m.producedSingle)}; ` +
          `delivered (first attempt 2xx): ${fmt(m.delivery)} + ${pollRequests} SQS polling; ` +
          `${m.delivered}/${m.jobs} delivered, ${m.verified} verified by the receiver; ` +
          `CPU ${m.cpuMsPerJob.toFixed(2)} ms per delivery here`,
      },
    ];
    for (const mode of ['batch', 'single'] as const) {
      const c = cost(mode);
      rows.push({
        section: 'webhooks',
        figure: `$ per 1M webhook events (${mode === 'batch' ? 'produced in batches' : 'one per publish'})`,
        value: Number(c.total.toFixed(3)),
        unit: '$',
        note: `${Object.entries(c.parts)
          .map(([k, v]) => `${k} $${v.toFixed(3)}`)
          .join(
            ', ',
          )}; one endpoint, first attempt succeeds, receiver answers in ${RECEIVER_MS} ms, ${MEMORY_MB} MB`,
      });
    }
    const scale = Number(process.env.WEBHOOK_BENCH_MESSAGES ?? 100);
    const phases = await measureWebhookLatency({
      steady: { messages: scale, perSecond: 2 },
      burst: { messages: scale * 2, concurrency: 4 },
    });
    const { steady, burst } = phases as Record<'steady' | 'burst', WebhookLatency>;
    const detail = (l: WebhookLatency) =>
      `${l.events} events of ${l.messages} messages (queued, sent, delivered); p50 ${Math.round(l.p50)} ms, ` +
      `p95 ${Math.round(l.p95)} ms, max ${Math.round(l.max)} ms; p99 by type ${Object.entries(l.p99ByType)
        .map(([t, v]) => `${t} ${Math.round(v)}`)
        .join(
          ', ',
        )}; ${l.eventsPerSecond.toFixed(1)} events/s delivered; every delivery verified: ${l.verified}`;
    rows.push(
      {
        section: 'webhooks',
        figure: 'state change → first webhook attempt, p99 (local mode)',
        value: Math.round(steady.p99),
        unit: 'ms',
        note: `steady: messages sent one at a time, 2 a second; ${detail(steady)}`,
      },
      {
        section: 'webhooks',
        figure: 'state change → first webhook attempt under a burst, p99 (local mode)',
        value: Math.round(burst.p99),
        unit: 'ms',
        note: `burst: 4 clients sending as fast as the api answers, one endpoint (4 slots); ${detail(burst)}`,
      },
    );
    return rows;
  },
};
