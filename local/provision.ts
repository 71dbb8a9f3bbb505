import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, type SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type LocalPlan, localSecretArn, type Physical, type QueuePlan } from './plan.ts';

/**
 * Creates the plan's tables, queues, topics, subscriptions and buckets on the emulators, each
 * named after its logical id, and returns their physical names for resolving function
 * environments. (dynalite has no UpdateTimeToLive: TTL is enforced by DynamoDB only once deployed;
 * fauxqs stores lifecycle rules without applying them, so buckets are created without.)
 *
 * Buckets are created only when an S3 client is given; without one they are still named, so
 * environments resolve for callers that never touch S3.
 */
export async function provision(
  plan: LocalPlan,
  clients: { dynamo: DynamoDBClient; sqs: SQSClient; sns: SNSClient; s3?: S3Client },
): Promise<Physical> {
  await Promise.all(
    plan.tables.map((t) =>
      clients.dynamo.send(
        new CreateTableCommand({
          TableName: t.logicalId,
          KeySchema: t.keySchema.map((k) => ({
            AttributeName: k.AttributeName,
            KeyType: k.KeyType as 'HASH' | 'RANGE',
          })),
          AttributeDefinitions: t.attributeDefinitions.map((a) => ({
            AttributeName: a.AttributeName,
            AttributeType: a.AttributeType as 'S' | 'N' | 'B',
          })),
          BillingMode: 'PAY_PER_REQUEST',
          ...(t.globalSecondaryIndexes.length > 0
            ? {
                GlobalSecondaryIndexes: t.globalSecondaryIndexes.map((g) => ({
                  IndexName: String(g.IndexName),
                  KeySchema: g.KeySchema as { AttributeName: string; KeyType: 'HASH' | 'RANGE' }[],
                  Projection: g.Projection as { ProjectionType: 'ALL' | 'KEYS_ONLY' | 'INCLUDE' },
                })),
              }
            : {}),
        }),
      ),
    ),
  );

  const queues = new Map<string, { url: string; arn: string; name: string }>();
  const create = async (q: QueuePlan) => {
    const dlq = q.redrive ? queues.get(q.redrive.deadLetterQueue) : undefined;
    if (q.redrive && !dlq)
      throw new Error(`queue ${q.logicalId}: its dead-letter queue was not created first`);
    const attributes: Record<string, string> = {};
    if (q.visibilityTimeout !== undefined) attributes.VisibilityTimeout = String(q.visibilityTimeout);
    if (q.messageRetentionPeriod !== undefined)
      attributes.MessageRetentionPeriod = String(q.messageRetentionPeriod);
    if (q.redrive && dlq) {
      attributes.RedrivePolicy = JSON.stringify({
        deadLetterTargetArn: dlq.arn,
        maxReceiveCount: q.redrive.maxReceiveCount,
      });
    }
    const out = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: q.logicalId, Attributes: attributes }),
    );
    const url = out.QueueUrl ?? '';
    const attrs = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    queues.set(q.logicalId, { url, arn: attrs.Attributes?.QueueArn ?? '', name: q.logicalId });
  };
  // Dead-letter queues first: a source queue's redrive policy names its DLQ's ARN.
  await Promise.all(plan.queues.filter((q) => !q.redrive).map(create));
  await Promise.all(plan.queues.filter((q) => q.redrive).map(create));

  const topics = new Map<string, string>();
  for (const id of plan.topics) {
    const out = await clients.sns.send(new CreateTopicCommand({ Name: id }));
    topics.set(id, out.TopicArn ?? '');
  }
  for (const s of plan.subscriptions) {
    const topic = topics.get(s.topic);
    const queue = queues.get(s.queue);
    if (!topic || !queue) throw new Error(`subscription ${s.topic} → ${s.queue}: unknown topic or queue`);
    await clients.sns.send(
      new SubscribeCommand({
        TopicArn: topic,
        Protocol: 'sqs',
        Endpoint: queue.arn,
        Attributes: { RawMessageDelivery: String(s.rawMessageDelivery) },
      }),
    );
  }

  const { s3 } = clients;
  if (s3) await Promise.all(plan.buckets.map((b) => s3.send(new CreateBucketCommand({ Bucket: b.name }))));

  return {
    tables: new Map(plan.tables.map((t) => [t.logicalId, t.logicalId])),
    queues,
    topics,
    configurationSets: new Map(plan.configurationSets.map((c) => [c, c])),
    buckets: new Map(plan.buckets.map((b) => [b.logicalId, b.name])),
    secrets: new Map(plan.secrets.map((id) => [id, localSecretArn(id)])),
  };
}
