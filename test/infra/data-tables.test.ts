import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { Keys } from '../../lambdas/shared/names.ts';
import type { BatonStack } from '../../lib/baton-stack.ts';
import { props, resourceOf, resourcesOfType, synthTemplate } from './support.ts';

describe('DataTables', () => {
  let template: Template;
  let stack: BatonStack;

  beforeAll(() => {
    ({ template, stack } = synthTemplate());
  });

  it.each([
    ['apiKeys', Keys.apiKeys.partition, undefined],
    ['messages', Keys.messages.partition, Keys.messages.ttl],
    ['suppressions', Keys.suppressions.partition, Keys.suppressions.ttl],
    ['stats', Keys.stats.partition, undefined],
    ['idempotency', Keys.idempotency.partition, Keys.idempotency.ttl],
  ] as const)('keys the %s table on a string "%s" with TTL attribute %s', (name, partition, ttl) => {
    // Act
    const table = props(resourceOf(template, stack.tables[name]));

    // Assess
    expect(table.KeySchema).toEqual([{ AttributeName: partition, KeyType: 'HASH' }]);
    expect(table.AttributeDefinitions).toContainEqual({ AttributeName: partition, AttributeType: 'S' });
    expect(table.TimeToLiveSpecification).toEqual(
      ttl === undefined ? undefined : { AttributeName: ttl, Enabled: true },
    );
  });

  it('keys the guard table on string "pk" and "sk", its items expiring through "expiresAt"', () => {
    // Act
    const table = props(resourceOf(template, stack.tables.guard));

    // Assess
    expect(table.KeySchema).toEqual([
      { AttributeName: Keys.guard.partition, KeyType: 'HASH' },
      { AttributeName: Keys.guard.sort, KeyType: 'RANGE' },
    ]);
    expect(table.AttributeDefinitions).toEqual([
      { AttributeName: Keys.guard.partition, AttributeType: 'S' },
      { AttributeName: Keys.guard.sort, AttributeType: 'S' },
    ]);
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: Keys.guard.ttl, Enabled: true });
    expect(table.GlobalSecondaryIndexes).toBeUndefined();
  });

  it('creates exactly the seven tables of the data model', () => {
    // Act
    const tables = Object.values(resourcesOfType(template, 'AWS::DynamoDB::Table'));

    // Assess
    const partitionKeys = tables.map(
      (table) => (props(table).KeySchema as { AttributeName: string }[])[0]?.AttributeName,
    );
    expect(partitionKeys.sort()).toEqual(['address', 'id', 'keyId', 'pk', 'pk', 'pk', 'pk']);
  });

  it('makes every table on-demand, point-in-time recoverable and KMS-encrypted', () => {
    // Act / Assess
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
  });

  it('retains every table when the stack is deleted or the table replaced', () => {
    // Act
    const tables = Object.values(resourcesOfType(template, 'AWS::DynamoDB::Table'));

    // Assess
    for (const table of tables) {
      expect(table).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
  });

  it('indexes messages by SES message id so feedback can find them', () => {
    // Act
    const messages = props(resourceOf(template, stack.tables.messages));

    // Assess
    expect(messages.AttributeDefinitions).toContainEqual({
      AttributeName: Keys.messages.sesMessageId,
      AttributeType: 'S',
    });
    expect(messages.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: Keys.messages.sesMessageIdIndex,
        KeySchema: [{ AttributeName: Keys.messages.sesMessageId, KeyType: 'HASH' }],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ]);
  });

  it('gives tables no physical names, so two stacks can live in one account', () => {
    // Act
    const tables = Object.values(resourcesOfType(template, 'AWS::DynamoDB::Table'));

    // Assess
    for (const table of tables) expect(props(table).TableName).toBeUndefined();
  });
});
