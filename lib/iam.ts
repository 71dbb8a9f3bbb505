import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';

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
  | 'dynamodb:PutItem'
  | 'dynamodb:UpdateItem'
  | 'dynamodb:DeleteItem'
  | 'dynamodb:Query'
  | 'dynamodb:Scan';

/** Item access to one table. */
export function tableAccess(table: ITable, actions: readonly DynamoAction[]): PolicyStatement {
  return new PolicyStatement({ actions: [...actions], resources: [table.tableArn] });
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
