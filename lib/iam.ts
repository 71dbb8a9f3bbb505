import { Stack, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { CfnBucket, type IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';

/**
 * Explicit, wildcard-free permission statements. The CDK `grant*` helpers are not used on purpose:
 * `grantReadWriteData` adds actions the code never calls (BatchWriteItem, DescribeTable,
 * ConditionCheckItem, ...), and the point of listing actions here is that the policy reads as the
 * list of calls each function makes.
 */

/** DynamoDB item actions Baton's functions call. Typed so that a wildcard cannot be written. */
export type DynamoAction =
  | 'dynamodb:GetItem'
  | 'dynamodb:BatchGetItem'
  | 'dynamodb:BatchWriteItem'
  | 'dynamodb:PutItem'
  | 'dynamodb:UpdateItem'
  | 'dynamodb:DeleteItem'
  | 'dynamodb:Query'
  | 'dynamodb:Scan';

/** Item access to one table. */
export function tableAccess(table: ITable, actions: readonly DynamoAction[]): PolicyStatement {
  return new PolicyStatement({ actions: [...actions], resources: [table.tableArn] });
}

/**
 * Item access to one table, only to the items whose partition key starts with `partitionPrefix`
 * (IAM's `dynamodb:LeadingKeys` condition): a role that needs one kind of item of a shared table
 * cannot touch the others.
 */
export function partitionAccess(
  table: ITable,
  partitionPrefix: string,
  actions: readonly DynamoAction[],
): PolicyStatement {
  return new PolicyStatement({
    actions: [...actions],
    resources: [table.tableArn],
    conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${partitionPrefix}*`] } },
  });
}

/**
 * What a process that runs the abuse guard does on its table: ADD to counters, put and release event
 * markers, read and write tenant state and evaluation claims (conditional), query a scope's buckets
 * and the held-mail index. No Scan and no batch calls.
 */
export function guardAccess(table: ITable): PolicyStatement {
  return tableAccess(table, [
    'dynamodb:GetItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:Query',
  ]);
}

/**
 * What a process that runs the abuse guard does on the ApiKeys table: reads a key, writes the
 * guard's decisions onto it (UpdateItem), or onto every key of a tenant, found by a Scan of this
 * small table.
 */
export function guardKeyAccess(apiKeysTable: ITable): PolicyStatement {
  return tableAccess(apiKeysTable, ['dynamodb:GetItem', 'dynamodb:Scan', 'dynamodb:UpdateItem']);
}

/** Query on a global secondary index, which is authorised against the index ARN, not the table's. */
export function indexQuery(table: ITable, indexName: string): PolicyStatement {
  return new PolicyStatement({
    actions: ['dynamodb:Query'],
    resources: [`${table.tableArn}/index/${indexName}`],
  });
}

/**
 * What a Lambda event source mapping needs to drain a queue. The batch variants of delete and
 * change-visibility are authorised by the same actions.
 */
export function queueConsume(queue: IQueue): PolicyStatement {
  return new PolicyStatement({
    actions: [
      'sqs:ReceiveMessage',
      'sqs:DeleteMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:GetQueueAttributes',
    ],
    resources: [queue.queueArn],
  });
}

/** Enqueue onto the given queues (`SendMessageBatch` is authorised by `sqs:SendMessage`). */
export function queueSend(queues: readonly IQueue[]): PolicyStatement {
  return new PolicyStatement({
    actions: ['sqs:SendMessage'],
    resources: queues.map((queue) => queue.queueArn),
  });
}

/**
 * Reads one secret's value: `GetSecretValue` only (no describe, list, write or rotate). A secret
 * known only by name or partial ARN is matched with the six characters Secrets Manager appends to
 * every name (`-??????`, one character each): without them the policy would name no real secret.
 */
export function secretRead(secret: ISecret): PolicyStatement {
  return new PolicyStatement({
    actions: ['secretsmanager:GetSecretValue'],
    resources: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
  });
}

/** S3 object actions Baton's functions call. Typed so that a wildcard cannot be written. */
export type S3ObjectAction = 's3:GetObject' | 's3:PutObject' | 's3:DeleteObject';

/**
 * Object access to the keys under `keyPrefix` of a bucket. The key itself is the resource
 * wildcard (`<bucket>/<prefix>*`): objects are named per message at run time. Pair it with
 * {@link acknowledgeObjectKeys} on the role it is added to.
 */
export function objectAccess(
  bucket: IBucket,
  keyPrefix: string,
  actions: readonly S3ObjectAction[],
): PolicyStatement {
  return new PolicyStatement({ actions: [...actions], resources: [bucket.arnForObjects(`${keyPrefix}*`)] });
}

/**
 * Acknowledges, on `role` only, the one cdk-nag finding {@link objectAccess} causes: the resource
 * wildcard over the prefix's keys (AwsSolutions-IAM5 reports each wildcard resource separately,
 * so any other wildcard on the role still fails synthesis).
 */
export function acknowledgeObjectKeys(
  role: IConstruct,
  bucket: IBucket,
  keyPrefix: string,
  reason: string,
): void {
  const cfn = bucket.node.defaultChild;
  if (!(cfn instanceof CfnBucket)) {
    throw new Error(`acknowledgeObjectKeys: ${bucket.node.path} is not a bucket defined in this app`);
  }
  const logicalId: unknown = Stack.of(bucket).resolve(cfn.logicalId);
  Validations.of(role).acknowledge({
    id: `AwsSolutions-IAM5[Resource::<${String(logicalId)}.Arn>/${keyPrefix}*]`,
    reason,
  });
}
