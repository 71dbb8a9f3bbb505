/**
 * Emulators for the integration tier: DynamoDB (dynalite) and SQS/SNS (fauxqs) on 127.0.0.1,
 * provisioned from the real synthesized template through local mode's own `planFromTemplate` and
 * `provision`, so every test that uses them also proves that local provisioning matches the stack.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../lambdas/adapters/clients.ts';
import { EnvVar, Keys } from '../../lambdas/shared/names.ts';
import { synthTemplate } from '../../local/baton-local.ts';
import { startDynamo } from '../../local/emulators/dynamodb.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import { type LocalPlan, type Physical, planFromTemplate, resolveEnvironment } from '../../local/plan.ts';
import { provision } from '../../local/provision.ts';

export const region = 'us-east-1';
export const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * Client settings for an endpoint nothing listens on (port 9), with SDK retries off: a request
 * gets no HTTP answer at all, for the adapters' "service unreachable" paths.
 */
export const unreachable = { endpoint: 'http://127.0.0.1:9', region, credentials, maxAttempts: 1 };

/** The SQS client shape local mode uses: queue URLs name the queue, `endpoint` is where requests go. */
export const sqsClient = (endpoint: string): SQSClient =>
  new SQSClient({ endpoint, region, credentials, useQueueUrlAsEndpoint: false });

/** The functions' document client, pointed at the emulator. */
export const documentClient = (dynamo: DynamoDBClient): DynamoDBDocumentClient =>
  createDocumentClient(dynamo);

export interface QueueRef {
  readonly url: string;
  readonly arn: string;
  readonly name: string;
}

/** The stack's resources on the emulators, found by the role the functions' environments give them. */
export interface ProvisionedStack {
  readonly dynamo: LocalEmulator;
  readonly sqsSns: LocalEmulator;
  readonly clients: {
    readonly dynamo: DynamoDBClient;
    readonly doc: DynamoDBDocumentClient;
    readonly sqs: SQSClient;
    readonly sns: SNSClient;
  };
  readonly plan: LocalPlan;
  readonly physical: Physical;
  /** Every function's environment, resolved against the local resources, by logical id. */
  readonly environments: ReadonlyMap<string, Record<string, string>>;
  readonly tables: {
    readonly apiKeys: string;
    readonly messages: string;
    readonly suppressions: string;
    readonly stats: string;
    readonly idempotency: string;
    readonly guard: string;
    readonly webhooks: string;
  };
  readonly queues: {
    readonly transactional: QueueRef;
    readonly broadcast: QueueRef;
    /** The webhook delivery queue (issue 14). */
    readonly webhook: QueueRef;
  };
  stop(): Promise<void>;
}

/** The raw Stats item under partition key `pk`, as DynamoDB holds it (a consistent read). */
export const statsItem = async (
  stack: ProvisionedStack,
  pk: string,
): Promise<Record<string, unknown> | undefined> => {
  const out = await stack.clients.doc.send(
    new GetCommand({
      TableName: stack.tables.stats,
      Key: { [Keys.stats.partition]: pk },
      ConsistentRead: true,
    }),
  );
  return out.Item;
};

/** Synthesizes the stack, starts both emulators and provisions the template's resources on them. */
export const startProvisionedStack = async (): Promise<ProvisionedStack> => {
  const plan = planFromTemplate(synthTemplate('example.com'));
  const [dynamo, sqsSns] = await Promise.all([startDynamo({ port: 0 }), startSqsSns({ port: 0, region })]);
  const dynamoClient = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
  const sqs = sqsClient(sqsSns.endpoint);
  const sns = new SNSClient({ endpoint: sqsSns.endpoint, region, credentials });
  const s3 = new S3Client({ endpoint: sqsSns.endpoint, region, credentials, forcePathStyle: true });
  const stop = async (): Promise<void> => {
    dynamoClient.destroy();
    sqs.destroy();
    sns.destroy();
    s3.destroy();
    await Promise.all([dynamo.stop(), sqsSns.stop()]);
  };
  try {
    const physical = await provision(plan, { dynamo: dynamoClient, sqs, sns, s3 });
    const environments = new Map(
      plan.functions.map((fn) => [fn.logicalId, resolveEnvironment(fn.environment, physical)] as const),
    );
    const setting = (name: string): string => {
      for (const env of environments.values()) {
        const value = env[name];
        if (value !== undefined) return value;
      }
      throw new Error(`no function in the template has ${name} in its environment`);
    };
    const queueByUrl = (url: string): QueueRef => {
      const found = [...physical.queues.values()].find((q) => q.url === url);
      if (!found) throw new Error(`no provisioned queue has the URL ${url}`);
      return found;
    };
    return {
      dynamo,
      sqsSns,
      clients: { dynamo: dynamoClient, doc: documentClient(dynamoClient), sqs, sns },
      plan,
      physical,
      environments,
      tables: {
        apiKeys: setting(EnvVar.apiKeysTable),
        messages: setting(EnvVar.messagesTable),
        suppressions: setting(EnvVar.suppressionsTable),
        stats: setting(EnvVar.statsTable),
        idempotency: setting(EnvVar.idempotencyTable),
        guard: setting(EnvVar.guardTable),
        webhooks: setting(EnvVar.webhooksTable),
      },
      queues: {
        transactional: queueByUrl(setting(EnvVar.transactionalQueueUrl)),
        broadcast: queueByUrl(setting(EnvVar.broadcastQueueUrl)),
        webhook: queueByUrl(setting(EnvVar.webhookQueueUrl)),
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
};

/** A fresh folder under the OS temp dir; `remove` deletes it with everything in it. */
export const tempDir = async (prefix: string): Promise<{ path: string; remove(): Promise<void> }> => {
  const path = await mkdtemp(join(tmpdir(), `baton-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
};

/** Polls `probe` until it returns a value other than undefined, or fails naming `what`. */
export const eventually = async <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
};

/** Creates an on-demand table keyed by `pk`/`sk` strings, as the Guard and Webhooks tables are. */
export const createPkSkTable = async (
  client: DynamoDBClient,
  name: string,
  keys: { readonly partition: string; readonly sort: string } = Keys.webhooks,
): Promise<void> => {
  await client.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [
        { AttributeName: keys.partition, AttributeType: 'S' },
        { AttributeName: keys.sort, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: keys.partition, KeyType: 'HASH' },
        { AttributeName: keys.sort, KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
};

/** Creates a queue with the given attributes; its URL and ARN (for a redrive policy or an event source). */
export const createQueueWithArn = async (
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string> = {},
): Promise<{ url: string; arn: string }> => {
  const { QueueUrl = '' } = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
  );
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  return { url: QueueUrl, arn: Attributes?.QueueArn ?? '' };
};
