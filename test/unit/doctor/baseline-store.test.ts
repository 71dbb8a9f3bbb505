import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createDocumentClient } from '../../../lambdas/adapters/clients.ts';
import { DynamoBaselineStore } from '../../../lambdas/adapters/doctor-baseline-store.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';

const doc = createDocumentClient(new DynamoDBClient({ region: 'eu-west-1' }));
const dynamo = mockClient(doc);

afterEach(() => dynamo.reset());

describe('DynamoBaselineStore', () => {
  it('writes one item per domain under doctor: in the Guard table', async () => {
    // Prepare
    dynamo.on(PutCommand).resolves({});

    // Act
    await new DynamoBaselineStore(doc, 'Guard').write('example.com', { dkim_cnames: 'pass' });

    // Assess
    expect(dynamo.commandCalls(PutCommand)[0]?.args[0].input).toEqual({
      TableName: 'Guard',
      Item: { pk: 'doctor:example.com', sk: 'baseline', statuses: { dkim_cnames: 'pass' } },
    });
  });

  it('reads back known check ids and statuses only, and nothing for a domain never checked', async () => {
    // Prepare
    dynamo
      .on(GetCommand, { Key: { pk: 'doctor:example.com', sk: 'baseline' } })
      .resolves({ Item: { statuses: { dkim_cnames: 'pass', retired_check: 'pass', bimi: 'broken' } } })
      .on(GetCommand, { Key: { pk: 'doctor:new.example.com', sk: 'baseline' } })
      .resolves({});
    const store = new DynamoBaselineStore(doc, 'Guard');

    // Act
    const [known, unknown] = await Promise.all([store.read('example.com'), store.read('new.example.com')]);

    // Assess
    expect(known).toEqual({ dkim_cnames: 'pass' });
    expect(unknown).toBeUndefined();
  });

  it('turns a throttled read into a TransientError', async () => {
    // Prepare
    dynamo
      .on(GetCommand)
      .rejects(Object.assign(new Error('slow down'), { name: 'ProvisionedThroughputExceededException' }));

    // Act
    const read = new DynamoBaselineStore(doc, 'Guard').read('example.com');

    // Assess
    await expect(read).rejects.toBeInstanceOf(TransientError);
  });
});
