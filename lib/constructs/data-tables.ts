import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { Keys } from '../../lambdas/shared/names.ts';

/**
 * Baton's seven DynamoDB tables (DESIGN §3). Key and attribute names come from the shared names
 * module, so the functions and the tables cannot disagree.
 *
 * Every table: on-demand (mail traffic is bursty and mostly idle), point-in-time recovery
 * (suppressions and API keys are not reproducible), encryption with the AWS managed key, and the
 * CDK default removal policy RETAIN: deleting the stack must never delete the suppression list.
 */
export class DataTables extends Construct {
  /** `keyId` → hashed secret, tenant, scopes, allowed domains and CIDRs. */
  readonly apiKeys: Table;
  /** `id` → message record and event timeline; GSI from SES message id back to `id`. */
  readonly messages: Table;
  /** Normalised address → suppression reason; soft bounces expire through TTL. */
  readonly suppressions: Table;
  /** `tenant#day` → counters. */
  readonly stats: Table;
  /** Idempotency keys and send claims; expire through TTL. */
  readonly idempotency: Table;
  /**
   * The abuse guard (issue 13): `pk`/`sk` → hourly counters and event markers per key and tenant,
   * each tenant's guard state, evaluation claims and the held-mail index; most items expire through TTL.
   */
  readonly guard: Table;
  /**
   * Webhooks (issue 14): `pk`/`sk` → a tenant's endpoints, each endpoint's delivery state (breaker,
   * concurrency slots) and attempts, and the replay log of produced events; logs expire through TTL.
   */
  readonly webhooks: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.apiKeys = secureTable(this, 'ApiKeys', Keys.apiKeys.partition);
    this.messages = secureTable(this, 'Messages', Keys.messages.partition, Keys.messages.ttl);
    // KEYS_ONLY: feedback only needs the Baton id for an SES message id, then reads the item itself.
    this.messages.addGlobalSecondaryIndex({
      indexName: Keys.messages.sesMessageIdIndex,
      partitionKey: { name: Keys.messages.sesMessageId, type: AttributeType.STRING },
      projectionType: ProjectionType.KEYS_ONLY,
    });
    this.suppressions = secureTable(this, 'Suppressions', Keys.suppressions.partition, Keys.suppressions.ttl);
    this.stats = secureTable(this, 'Stats', Keys.stats.partition);
    this.idempotency = secureTable(this, 'Idempotency', Keys.idempotency.partition, Keys.idempotency.ttl);
    // A sort key: each scope's hour buckets are one partition, read by one Query per evaluation.
    this.guard = secureTable(this, 'Guard', Keys.guard.partition, Keys.guard.ttl, Keys.guard.sort);
    // A sort key: a tenant's endpoints, an endpoint's attempts and a tenant's events are each one
    // partition, listed by one Query (newest attempts first, events since a time in order).
    this.webhooks = secureTable(
      this,
      'Webhooks',
      Keys.webhooks.partition,
      Keys.webhooks.ttl,
      Keys.webhooks.sort,
    );
  }
}

function secureTable(
  scope: Construct,
  id: string,
  partitionKey: string,
  ttlAttribute?: string,
  sortKey?: string,
): Table {
  return new Table(scope, id, {
    partitionKey: { name: partitionKey, type: AttributeType.STRING },
    ...(sortKey === undefined ? {} : { sortKey: { name: sortKey, type: AttributeType.STRING } }),
    billingMode: BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: TableEncryption.AWS_MANAGED,
    ...(ttlAttribute === undefined ? {} : { timeToLiveAttribute: ttlAttribute }),
  });
}
