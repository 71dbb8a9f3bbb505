import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { synthTemplate } from '../../local/baton-local.ts';
import { startDynamo } from '../../local/emulators/dynamodb.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import {
  type LocalPlan,
  localBucketName,
  type Physical,
  planFromTemplate,
  resolveEnvironment,
  UnsupportedTemplateError,
} from '../../local/plan.ts';
import { provision } from '../../local/provision.ts';
import { credentials, region, sqsClient } from '../support/emulators.ts';

// Local mode gets the payload bucket the way it gets queues: from the synthesized template.

describe('payload bucket in local mode (template → plan → fauxqs S3)', () => {
  let plan: LocalPlan;
  let dynamo: LocalEmulator;
  let sqsSns: LocalEmulator;
  let s3: S3Client;
  let physical: Physical;
  const clients: Array<{ destroy(): void }> = [];

  beforeAll(async () => {
    plan = planFromTemplate(synthTemplate('example.com'));
    [dynamo, sqsSns] = await Promise.all([startDynamo({ port: 0 }), startSqsSns({ port: 0, region })]);
    s3 = new S3Client({ endpoint: sqsSns.endpoint, region, credentials, forcePathStyle: true });
    const dynamoClient = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
    const sqs = sqsClient(sqsSns.endpoint);
    const sns = new SNSClient({ endpoint: sqsSns.endpoint, region, credentials });
    clients.push(s3, dynamoClient, sqs, sns);
    physical = await provision(plan, { dynamo: dynamoClient, sqs, sns, s3 });
  });

  afterAll(async () => {
    for (const c of clients) c.destroy();
    await Promise.all([dynamo?.stop(), sqsSns?.stop()]);
  });

  it('plans the one bucket of the template under a lower-case local name', () => {
    // Act
    const [bucket, ...others] = plan.buckets;

    // Assess
    expect(others).toEqual([]);
    expect(bucket?.logicalId).toMatch(/^PayloadsBucket[0-9A-F]{8}$/);
    expect(bucket?.name).toBe(bucket?.logicalId.toLowerCase());
  });

  it('creates the bucket on the S3 emulator', async () => {
    // Prepare
    const name = plan.buckets[0]?.name;

    // Act
    const head = await s3.send(new HeadBucketCommand({ Bucket: name }));

    // Assess
    expect(head.$metadata.httpStatusCode).toBe(200);
    expect([...physical.buckets.values()]).toEqual([name]);
  });

  it('gives the api function and both senders the local bucket name', () => {
    // Act
    const names = plan.functions
      .map((fn) => resolveEnvironment(fn.environment, physical)[EnvVar.payloadBucket])
      .filter((name) => name !== undefined);

    // Assess
    expect(names).toEqual([plan.buckets[0]?.name, plan.buckets[0]?.name, plan.buckets[0]?.name]);
  });

  it('resolves the bucket ARN as S3 would name it', () => {
    // Prepare
    const bucket = plan.buckets[0];

    // Act
    const env = resolveEnvironment({ ARN: { 'Fn::GetAtt': [bucket?.logicalId, 'Arn'] } }, physical);

    // Assess
    expect(env.ARN).toBe(`arn:aws:s3:::${bucket?.name}`);
  });

  it('refuses a logical id that cannot be a bucket name, naming it', () => {
    // Act
    const name = () => localBucketName(`Payloads${'X'.repeat(60)}`);

    // Assess
    expect(name).toThrow(UnsupportedTemplateError);
    expect(name).toThrow(/^bucket PayloadsX+: "payloadsx+" is not a valid local bucket name$/);
  });
});
