import { Duration, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  EnvVar,
  HELD_PAYLOAD_PREFIX,
  LANES,
  type Lane,
  PAYLOAD_KEY_PREFIX,
} from '../../lambdas/shared/names.ts';
import {
  acknowledgeObjectKeys,
  guardAccess,
  guardKeyAccess,
  objectAccess,
  queueSend,
  tableAccess,
} from '../iam.ts';
import { BatonFunction, type Workload } from './baton-function.ts';

export interface ApiHandlerProps {
  readonly apiKeysTable: ITable;
  readonly messagesTable: ITable;
  readonly suppressionsTable: ITable;
  readonly statsTable: ITable;
  readonly idempotencyTable: ITable;
  /** The abuse guard's table: counters, tenant state, evaluation claims, held-mail index. */
  readonly guardTable: ITable;
  /** The queue of every lane, which accepted messages are enqueued on. */
  readonly laneQueues: Readonly<Record<Lane, IQueue>>;
  /** Where jobs too large for a queue message are stored (claim check); the function writes them. */
  readonly payloadBucket: IBucket;
  /** Message record retention in days (`BATON_RETENTION_DAYS`). */
  readonly retentionDays: number;
  readonly logRetention: RetentionDays;
  /**
   * Function timeout. Well under API Gateway's 30 s integration limit; a 100-message batch is a
   * handful of DynamoDB and SQS batch calls.
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;
}

/**
 * Why the api function has no Lambda dead-letter queue (cdk-nag Serverless-LambdaDLQ). Exported for
 * the infra tests.
 */
export const API_DLQ_REASON =
  'A function DeadLetterConfig only receives failed asynchronous invocations, and this function is ' +
  'only ever invoked synchronously by the HTTP API: a failure is returned to the client as a 5xx ' +
  'problem response (and counted by the function error alarm) that the client may retry, safely ' +
  'with an Idempotency-Key. A function DLQ would stay empty and add a queue and an sqs:SendMessage grant.';

/** The function behind the HTTP API (DESIGN §2) and the calls it may make. */
export class ApiHandler extends Construct {
  readonly handler: BatonFunction;
  private readonly props: ApiHandlerProps;

  constructor(scope: Construct, id: string, props: ApiHandlerProps) {
    super(scope, id);
    const missing = LANES.filter((lane) => props.laneQueues[lane] === undefined);
    if (missing.length > 0) throw new Error(`ApiHandler: no queue given for lane(s) ${missing.join(', ')}`);

    this.props = props;
    this.handler = new BatonFunction(this, 'Handler', {
      entry: 'lambdas/api/handler.ts',
      serviceName: 'baton-api',
      description:
        'Baton HTTP API: authenticates, validates and enqueues messages; serves status and suppressions',
      timeout: props.timeout ?? Duration.seconds(10),
      logRetention: props.logRetention,
    });
    Validations.of(this.handler.function).acknowledge({ id: 'Serverless-LambdaDLQ', reason: API_DLQ_REASON });
    this.shareDataAccess(this.handler);
  }

  /**
   * Gives `workload` the api function's environment and its table, queue and bucket grants, from
   * this one list: the SMTP server runs the same accept path, so it gets exactly these.
   */
  shareDataAccess(workload: Workload): void {
    const { props } = this;
    const environment = {
      [EnvVar.apiKeysTable]: props.apiKeysTable.tableName,
      [EnvVar.messagesTable]: props.messagesTable.tableName,
      [EnvVar.suppressionsTable]: props.suppressionsTable.tableName,
      [EnvVar.statsTable]: props.statsTable.tableName,
      [EnvVar.idempotencyTable]: props.idempotencyTable.tableName,
      [EnvVar.guardTable]: props.guardTable.tableName,
      [EnvVar.transactionalQueueUrl]: props.laneQueues.transactional.queueUrl,
      [EnvVar.broadcastQueueUrl]: props.laneQueues.broadcast.queueUrl,
      [EnvVar.retentionDays]: String(props.retentionDays),
      [EnvVar.payloadBucket]: props.payloadBucket.bucketName,
    };
    for (const [name, value] of Object.entries(environment)) workload.addEnvironment(name, value);

    workload.addToRolePolicy(guardKeyAccess(props.apiKeysTable));
    workload.addToRolePolicy(guardAccess(props.guardTable));
    workload.addToRolePolicy(
      // BatchWriteItem records the messages of a batch request, 25 per call.
      tableAccess(props.messagesTable, [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:BatchWriteItem',
        // Erasure finds the tenant's records of an address by a parallel scan (no index by recipient).
        'dynamodb:Scan',
      ]),
    );
    // Scan serves the paginated suppression listing; BatchGet the pre-check of all recipients.
    workload.addToRolePolicy(
      tableAccess(props.suppressionsTable, [
        'dynamodb:GetItem',
        'dynamodb:BatchGetItem',
        'dynamodb:PutItem',
        'dynamodb:DeleteItem',
        'dynamodb:Scan',
      ]),
    );
    workload.addToRolePolicy(
      // GetItem and UpdateItem: the daily quota; BatchGetItem: GET /v1/stats reads a range of days.
      tableAccess(props.statsTable, ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:UpdateItem']),
    );
    workload.addToRolePolicy(
      tableAccess(props.idempotencyTable, [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:DeleteItem',
      ]),
    );
    workload.addToRolePolicy(queueSend(LANES.map((lane) => props.laneQueues[lane])));
    workload.addToRolePolicy(objectAccess(props.payloadBucket, PAYLOAD_KEY_PREFIX, ['s3:PutObject']));
    acknowledgeObjectKeys(
      workload.role,
      props.payloadBucket,
      PAYLOAD_KEY_PREFIX,
      'Payload objects are named per message at run time (payloads/<message id>); the api accept path ' +
        '(over HTTPS or SMTP) may only put objects under that prefix of the payload bucket; it reads ' +
        'and deletes only held jobs (payloads/held/), never lists.',
    );
    // Held mail's jobs: an operator's release reads one back, release and cancel delete it.
    workload.addToRolePolicy(
      objectAccess(props.payloadBucket, HELD_PAYLOAD_PREFIX, ['s3:GetObject', 's3:DeleteObject']),
    );
    acknowledgeObjectKeys(
      workload.role,
      props.payloadBucket,
      HELD_PAYLOAD_PREFIX,
      'Held jobs are named per message at run time (payloads/held/<message id>.json); the api may read ' +
        'and delete only objects under that prefix (operator release and cancel), never list.',
    );
  }
}
