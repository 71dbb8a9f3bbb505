/**
 * The sender app with its REAL adapters (DynamoMessageStore, DynamoSuppressionStore, SesMailer,
 * SqsVisibility) against the integration emulators provisioned from the template (dynalite,
 * fauxqs) and the local SES stand-in, with every SDK client the sender uses counting its requests
 * by service, operation and resource. Used by `bench/sender.ts` (AWS requests per message) and the
 * delivery integration tests; set-up traffic (creating records, queueing jobs) goes through the
 * stack's own clients and is not counted.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { type Message, ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import { DynamoMessageStore } from '../../lambdas/adapters/message-store.ts';
import { SesMailer } from '../../lambdas/adapters/ses-mailer.ts';
import { DynamoSuppressionStore } from '../../lambdas/adapters/suppression-store.ts';
import { SqsVisibility } from '../../lambdas/adapters/visibility.ts';
import type { DkimKey } from '../../lambdas/domain/delivery/dkim.ts';
import { CachedApiKeys } from '../../lambdas/domain/keys/key-cache.ts';
import type { MessageRecord, SendJob } from '../../lambdas/domain/message.ts';
import { createSender } from '../../lambdas/sender/app.ts';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { sqsRecordOf } from '../../local/runtime/sqs-poller.ts';
import { type FaultPlan, type SesStandin, startSesStandin } from '../../local/ses-standin/index.ts';
import { messageRecord, outgoingMessage, recipient } from './builders.ts';
import {
  credentials,
  documentClient,
  type ProvisionedStack,
  region,
  sqsClient,
  startProvisionedStack,
  tempDir,
} from './emulators.ts';
import { InMemoryHeldJobs } from './fakes.ts';
import type { Sender } from './sender-batch.ts';

export interface RequestTally {
  readonly service: string;
  readonly operation: string;
  /** Table, queue or configuration set the request named (`-` when none). */
  readonly resource: string;
  /** API calls (the `initialize` step: once per `client.send`). */
  calls: number;
  /** HTTP requests (inside the SDK's retry loop: retries included). */
  attempts: number;
}

/** Counts every request an SDK client sends, through two middlewares on its stack. */
export class RequestCounter {
  readonly #tallies = new Map<string, RequestTally>();

  instrument<C extends { readonly middlewareStack: object }>(service: string, client: C): C {
    // The SDK's own types need the client's Input/Output unions; the shape used here is all we need.
    const stack = client.middlewareStack as unknown as {
      add(
        middleware: (
          next: (args: { input: unknown }) => Promise<unknown>,
          context: { commandName?: string },
        ) => (args: { input: unknown }) => Promise<unknown>,
        options: { step: 'initialize' | 'finalizeRequest'; name: string; priority?: 'low' | 'high' },
      ): void;
    };
    stack.add(
      (next, context) => async (args) => {
        this.#tally(service, context.commandName, args.input).calls += 1;
        return next(args);
      },
      { step: 'initialize', name: 'batonCountCalls' },
    );
    // finalizeRequest runs inside the retry middleware (also finalizeRequest, priority high).
    stack.add(
      (next, context) => async (args) => {
        this.#tally(service, context.commandName, undefined).attempts += 1;
        return next(args);
      },
      { step: 'finalizeRequest', name: 'batonCountAttempts', priority: 'low' },
    );
    return client;
  }

  /** Every tally so far, by service then operation. */
  tallies(): RequestTally[] {
    return [...this.#tallies.values()]
      .map((t) => ({ ...t }))
      .sort((a, b) => `${a.service} ${a.operation}`.localeCompare(`${b.service} ${b.operation}`));
  }

  reset(): void {
    this.#tallies.clear();
  }

  #tally(service: string, commandName: string | undefined, input: unknown): RequestTally {
    const operation = (commandName ?? 'Unknown').replace(/Command$/, '');
    const key = `${service} ${operation}`;
    let tally = this.#tallies.get(key);
    if (!tally) {
      tally = { service, operation, resource: resourceOf(input), calls: 0, attempts: 0 };
      this.#tallies.set(key, tally);
    }
    return tally;
  }
}

function resourceOf(input: unknown): string {
  const i = (input ?? {}) as {
    TableName?: string;
    RequestItems?: Record<string, unknown>;
    QueueUrl?: string;
    ReceiptHandle?: string;
    ConfigurationSetName?: string;
  };
  if (i.TableName) return i.TableName;
  if (i.RequestItems) return Object.keys(i.RequestItems).join(',');
  if (i.ConfigurationSetName) return i.ConfigurationSetName;
  if (i.QueueUrl) return i.QueueUrl.split('/').pop() ?? '-';
  return '-';
}

export interface SenderRig {
  readonly stack: ProvisionedStack;
  readonly ses: SesStandin;
  readonly sender: Sender;
  /** The Messages table through an uncounted client, for set-up and assertions. */
  readonly records: DynamoMessageStore;
  readonly counter: RequestCounter;
  readonly configurationSet: string;
  /**
   * Creates `count` queued message records (one recipient each, `success+<prefix>-<n>@` the
   * simulator), queues their jobs on the transactional lane and receives them back as the SQS
   * event source would hand them to the sender. With `keyId`, the records and jobs name that key
   * (the sender re-checks it).
   */
  queueBatch(prefix: string, count: number, options?: { readonly keyId?: string }): Promise<SQSRecord[]>;
  /**
   * The held jobs, in memory: the request tallies count the sender's own calls. The held-job
   * adapter (HeldJobsStore) is exercised in adapters-guard-stores, the IAM audit and e2e.
   */
  readonly held: InMemoryHeldJobs;
  stop(): Promise<void>;
}

export interface SenderRigOptions {
  readonly dkim?: DkimKey;
  readonly faults?: FaultPlan;
  readonly maxReceiveCount?: number;
}

export async function startSenderRig(options: SenderRigOptions = {}): Promise<SenderRig> {
  const stack = await startProvisionedStack();
  const outbox = await tempDir('sender-rig-outbox');
  const senderEnv = [...stack.environments.values()].find((env) => env[EnvVar.lane] === 'transactional');
  const configurationSet = senderEnv?.[EnvVar.configurationSet];
  if (!configurationSet) throw new Error('the template has no transactional sender with a configuration set');
  const ses = await startSesStandin({
    outboxDir: outbox.path,
    region,
    eventDestinations: [],
    configurationSets: [configurationSet],
    publish: async () => {},
    eventDelayMs: 0,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    ...(options.faults ? { faults: options.faults } : {}),
  });

  const counter = new RequestCounter();
  const dynamo = counter.instrument(
    'DynamoDB',
    new DynamoDBClient({ endpoint: stack.dynamo.endpoint, region, credentials }),
  );
  const sesClient = counter.instrument(
    'SESv2',
    new SESv2Client({ endpoint: ses.endpoint, region, credentials }),
  );
  const sqs = counter.instrument('SQS', sqsClient(stack.sqsSns.endpoint));
  const doc = documentClient(dynamo);
  const held = new InMemoryHeldJobs();
  const sender = createSender({
    messages: new DynamoMessageStore(doc, stack.tables.messages),
    suppressions: new DynamoSuppressionStore(doc, stack.tables.suppressions),
    mailer: new SesMailer(sesClient, configurationSet),
    visibility: new SqsVisibility(sqs),
    // The jobs' keys re-checked on the stack's ApiKeys table (the rig's jobs name none, so a
    // batch reads nothing more); held jobs in memory (see SenderRig.held).
    keys: new CachedApiKeys(new DynamoApiKeyStore(doc, stack.tables.apiKeys), { clock: () => new Date() }),
    held,
    dkim: options.dkim,
    clock: () => new Date(),
    ...(options.maxReceiveCount !== undefined ? { maxReceiveCount: options.maxReceiveCount } : {}),
  });
  // Set-up writes and assertions go through the stack's own (uncounted) clients.
  const records = new DynamoMessageStore(stack.clients.doc, stack.tables.messages);
  const queue = stack.queues.transactional;

  const queueBatch = async (
    prefix: string,
    count: number,
    batchOptions: { readonly keyId?: string } = {},
  ): Promise<SQSRecord[]> => {
    const keyId = batchOptions.keyId === undefined ? {} : { keyId: batchOptions.keyId };
    const now = new Date();
    const jobs: SendJob[] = [];
    for (let n = 1; n <= count; n++) {
      const id = `msg_${prefix}${String(n).padStart(3, '0')}`;
      const to = `success+${prefix}-${n}@simulator.amazonses.com`;
      const record: MessageRecord = messageRecord({
        id,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
        expiresAt: Math.floor(now.getTime() / 1000) + 86_400,
        recipients: [recipient(to, 'queued', { updatedAt: now.toISOString() })],
        events: [{ type: 'accepted', at: now.toISOString() }],
        ...keyId,
      });
      await records.create(record);
      jobs.push({
        v: 1,
        id,
        tenant: record.tenant,
        message: outgoingMessage({ to: [{ address: to }] }),
        ...keyId,
      });
    }
    for (let i = 0; i < jobs.length; i += 10) {
      await stack.clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: jobs
            .slice(i, i + 10)
            .map((job, n) => ({ Id: String(n), MessageBody: JSON.stringify(job) })),
        }),
      );
    }
    // Only this batch's jobs: a message another caller left visible is not ours to hand over.
    const ids = new Set(jobs.map((j) => j.id));
    const received: Message[] = [];
    for (let tries = 0; received.length < count && tries < 50; tries++) {
      const out = await stack.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queue.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      for (const m of out.Messages ?? []) {
        if (ids.has((JSON.parse(m.Body ?? '{}') as { id?: string }).id ?? '')) received.push(m);
      }
    }
    if (received.length !== count) throw new Error(`received ${received.length} of ${count} queued jobs`);
    return received.map((m) => sqsRecordOf(m, queue.arn));
  };

  return {
    stack,
    ses,
    sender,
    records,
    counter,
    configurationSet,
    queueBatch,
    held,
    async stop() {
      dynamo.destroy();
      sesClient.destroy();
      sqs.destroy();
      await ses.stop();
      await stack.stop();
      await outbox.remove();
    },
  };
}
