import { Duration, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { payloadKey } from '../../lambdas/adapters/payload-store.ts';
import { EnvVar, HELD_PAYLOAD_PREFIX, PAYLOAD_KEY_PREFIX } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { PayloadBucket } from '../../lib/constructs/payload-bucket.ts';
import {
  asArray,
  type CfnResource,
  environmentOf,
  logicalIdOf,
  props,
  referencedId,
  resourceOf,
  resourcesOfType,
  statementsOf,
  synthTemplate,
} from './support.ts';

describe('payload bucket (claim check for large messages)', () => {
  let template: Template;
  let stack: BatonStack;
  let bucketId: string;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
    bucketId = logicalIdOf(stack.payloads.bucket);
  });

  const bucket = (): CfnResource => resourceOf(template, stack.payloads.bucket);
  const objectsArn = (prefix: string = PAYLOAD_KEY_PREFIX) => ({
    'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${prefix}*`]],
  });

  it('is the only bucket in the stack', () => {
    // Act
    const buckets = Object.keys(resourcesOfType(template, 'AWS::S3::Bucket'));

    // Assess
    expect(buckets).toEqual([bucketId]);
  });

  it('encrypts with SSE-S3, blocks every kind of public access and disables ACLs', () => {
    // Act
    const p = props(bucket());

    // Assess
    expect(p.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(p.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(p.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(p.VersioningConfiguration).toBeUndefined();
    expect(p.BucketName).toBeUndefined();
  });

  it('refuses every request without TLS 1.2 or later and allows nothing in its bucket policy', () => {
    // Prepare
    const policies = Object.values(resourcesOfType(template, 'AWS::S3::BucketPolicy'));
    expect(policies).toHaveLength(1);
    const policy = policies[0] as CfnResource;

    // Act
    const statements = statementsOf(props(policy).PolicyDocument);

    // Assess
    expect(referencedId(props(policy).Bucket)).toBe(bucketId);
    const arn = { 'Fn::GetAtt': [bucketId, 'Arn'] };
    const everything = [arn, { 'Fn::Join': ['', [arn, '/*']] }];
    const deny = (Condition: Record<string, unknown>) => ({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 's3:*',
      Resource: everything,
      Condition,
    });
    expect(statements).toEqual([
      deny({ Bool: { 'aws:SecureTransport': 'false' } }),
      deny({ NumericLessThan: { 's3:TlsVersion': 1.2 } }),
    ]);
  });

  it('expires payloads after 15 days, longer than any lane queue or DLQ keeps a pointer', () => {
    // Prepare
    const retentions = Object.values(resourcesOfType(template, 'AWS::SQS::Queue')).map((q) =>
      Number(props(q).MessageRetentionPeriod ?? 4 * 86_400),
    );

    // Act
    const rules = (props(bucket()).LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;

    // Assess
    expect(rules).toEqual([
      {
        Id: 'ExpirePayloads',
        Status: 'Enabled',
        ExpirationInDays: 15,
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
      },
    ]);
    // S3 expiry counts whole days from creation; a pointer can wait as long as the longest queue
    // retention (SQS keeps the enqueue time when it dead-letters), so the payload must outlive it.
    expect(Math.max(...retentions)).toBe(14 * 86_400);
    expect(15 * 86_400).toBeGreaterThan(Math.max(...retentions));
  });

  it('is retained when the stack is deleted (its objects expire on their own)', () => {
    // Act
    const { DeletionPolicy, UpdateReplacePolicy } = bucket() as CfnResource & {
      DeletionPolicy?: string;
      UpdateReplacePolicy?: string;
    };

    // Assess
    expect([DeletionPolicy, UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
    // No auto-delete custom resource (a function with broad S3 rights) comes with it.
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  it('scopes the functions to the key prefix the payload adapter writes under', () => {
    // Act
    const key = payloadKey('msg_01J00000000000000000000000');

    // Assess: the policies below grant `<bucket>/${PAYLOAD_KEY_PREFIX}*`
    expect(key).toBe(`${PAYLOAD_KEY_PREFIX}msg_01J00000000000000000000000`);
  });

  it('lets only the api function put, and only the senders get, payload objects; held jobs: senders put and delete, the api gets and deletes', () => {
    // Prepare
    const roleOf = (policy: CfnResource) => asArray(props(policy).Roles as unknown[]).map(referencedId);
    const grants: Array<{ role: string; action: string; resource: unknown }> = [];

    // Act
    for (const policy of Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))) {
      for (const statement of statementsOf(props(policy).PolicyDocument)) {
        for (const action of asArray(statement.Action).filter((a) => a.startsWith('s3:'))) {
          for (const role of roleOf(policy)) {
            for (const resource of asArray(statement.Resource)) grants.push({ role, action, resource });
          }
        }
      }
    }

    // Assess
    const api = logicalIdOf(stack.api.handler.role);
    const senders = [stack.lanes.transactional, stack.lanes.broadcast].map((l) => logicalIdOf(l.sender.role));
    const order = (a: (typeof grants)[number], b: (typeof grants)[number]) =>
      JSON.stringify(a).localeCompare(JSON.stringify(b));
    expect(grants.toSorted(order)).toEqual(
      [
        { role: api, action: 's3:PutObject', resource: objectsArn() },
        { role: api, action: 's3:GetObject', resource: objectsArn(HELD_PAYLOAD_PREFIX) },
        { role: api, action: 's3:DeleteObject', resource: objectsArn(HELD_PAYLOAD_PREFIX) },
        ...senders.flatMap((role) => [
          { role, action: 's3:GetObject', resource: objectsArn() },
          { role, action: 's3:PutObject', resource: objectsArn(HELD_PAYLOAD_PREFIX) },
          { role, action: 's3:DeleteObject', resource: objectsArn(HELD_PAYLOAD_PREFIX) },
        ]),
      ].toSorted(order),
    );
  });

  it('tells the api function and both senders the bucket name', () => {
    // Act
    const names = [stack.api.handler, stack.lanes.transactional.sender, stack.lanes.broadcast.sender].map(
      (fn) => environmentOf(template, fn.function)[EnvVar.payloadBucket],
    );

    // Assess
    expect(names).toEqual([{ Ref: bucketId }, { Ref: bucketId }, { Ref: bucketId }]);
  });

  it('publishes the bucket name as a stack output', () => {
    // Act
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess
    expect(outputs.PayloadBucketName?.Value).toEqual({ Ref: bucketId });
  });

  it('refuses an expiration that is not a whole number of days, naming it', () => {
    // Prepare
    const scope = new Stack();

    // Act
    const build = () => new PayloadBucket(scope, 'Payloads', { expiration: Duration.hours(36) });

    // Assess
    expect(build).toThrow('PayloadBucket: expiration must be a whole number of days (at least 1), got 1.5');
  });
});
