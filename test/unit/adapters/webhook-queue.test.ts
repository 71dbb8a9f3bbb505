import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { delaySeconds, SqsWebhookQueue } from '../../../lambdas/adapters/webhook-queue.ts';
import type { WebhookDeliveryJob } from '../../../lambdas/domain/webhooks/endpoint.ts';
import { TransientError } from '../../../lambdas/shared/errors.ts';

const NOW = Date.parse('2025-03-01T12:00:00.000Z');

function job(n: number, overrides: Partial<WebhookDeliveryJob> = {}): WebhookDeliveryJob {
  return {
    v: 1,
    tenant: 'tenant-a',
    endpointId: 'wh_aaaaaaaaaaaaaaaaaaaaaaaa',
    eventId: `evt_${n}`,
    type: 'message.delivered',
    body: '{}',
    attempt: 0,
    firstQueuedAt: NOW,
    notBefore: NOW,
    occurredAt: NOW,
    ...overrides,
  };
}

const sqs = mockClient(SQSClient);
afterEach(() => sqs.reset());

describe('SqsWebhookQueue', () => {
  it('sends jobs in batches of 10 with their delays', async () => {
    // Prepare
    sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const queue = new SqsWebhookQueue(new SQSClient({}), 'https://queue/webhooks', () => new Date(NOW));
    const jobs = Array.from({ length: 23 }, (_, n) => job(n, { notBefore: NOW + n * 1000 }));

    // Act
    await queue.enqueue(jobs);

    // Assess
    const calls = sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries ?? []);
    expect(calls.map((entries) => entries.length)).toEqual([10, 10, 3]);
    expect(calls.flat().map((e) => e.DelaySeconds)).toEqual(jobs.map((_, n) => n));
  });

  it('sends the entries SQS refused once more', async () => {
    // Prepare
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({ Failed: [{ Id: '1', Code: 'InternalError', SenderFault: false }] })
      .resolves({});
    const queue = new SqsWebhookQueue(new SQSClient({}), 'https://queue/webhooks', () => new Date(NOW));

    // Act
    await queue.enqueue([job(0), job(1), job(2)]);

    // Assess
    const calls = sqs.commandCalls(SendMessageBatchCommand).map((c) => c.args[0].input.Entries ?? []);
    expect(calls[1]?.map((e) => JSON.parse(e.MessageBody ?? '').eventId)).toEqual(['evt_1']);
  });

  it('throws TransientError when an entry is refused twice', async () => {
    // Prepare
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Failed: [{ Id: '0', Code: 'InternalError', SenderFault: false }] });
    const queue = new SqsWebhookQueue(new SQSClient({}), 'https://queue/webhooks', () => new Date(NOW));

    // Act
    const queued = queue.enqueue([job(0)]);

    // Assess
    await expect(queued).rejects.toThrow(new TransientError('queueing 1 of 1 webhook jobs failed twice'));
  });
});

describe('delaySeconds', () => {
  it.each([
    [-5_000, 0],
    [0, 0],
    [1, 1],
    [4_500, 5],
    [900_000, 900],
    [12 * 3_600_000, 900],
  ])('delays a job due in %i ms by %i s', (ahead, expected) => {
    expect(delaySeconds(job(0, { notBefore: NOW + ahead }), new Date(NOW))).toBe(expected);
  });
});
