import '../../support/quiet-powertools.ts';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createWebhookPublisher,
  onWebhookPublishError,
  WEBHOOK_PUBLISH_FAILURES,
} from '../../../lambdas/adapters/webhook-wiring.ts';
import { WebhookFanout } from '../../../lambdas/domain/webhooks/publish.ts';
import { ConfigurationError } from '../../../lambdas/shared/errors.ts';
import { EnvVar } from '../../../lambdas/shared/names.ts';
import { logger, metrics } from '../../../lambdas/shared/observability.ts';

const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
const sqs = new SQSClient({ region: 'us-east-1' });

afterEach(() => vi.restoreAllMocks());

describe('createWebhookPublisher', () => {
  it('publishes nothing, and needs nothing, without the Webhooks table', async () => {
    // Act
    const publisher = createWebhookPublisher({});

    // Assess
    expect(publisher).not.toBeInstanceOf(WebhookFanout);
    await expect(publisher.publish([])).resolves.toBeUndefined();
  });

  it('fans out over the table and queue the environment names', () => {
    // Act
    const publisher = createWebhookPublisher(
      { [EnvVar.webhooksTable]: 'Webhooks', [EnvVar.webhookQueueUrl]: 'http://queue/webhooks' },
      { doc, sqs },
    );

    // Assess
    expect(publisher).toBeInstanceOf(WebhookFanout);
  });

  it('names the queue variable when the table is set without it', () => {
    // Act
    const create = () => createWebhookPublisher({ [EnvVar.webhooksTable]: 'Webhooks' }, { doc, sqs });

    // Assess
    expect(create).toThrow(
      new ConfigurationError(`environment variable ${EnvVar.webhookQueueUrl} is required but not set`),
    );
  });
});

describe('onWebhookPublishError', () => {
  it('logs the step and count without the addresses of the error, and counts the events', () => {
    // Prepare
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    const added: Array<[string, number]> = [];
    vi.spyOn(metrics, 'singleMetric').mockImplementation(() => {
      const fake = {
        addMetric: (name: string, _unit: unknown, value: number) => {
          added.push([name, value]);
          return fake;
        },
      };
      return fake as unknown as ReturnType<typeof metrics.singleMetric>;
    });

    // Act
    onWebhookPublishError(new Error('refused for ana@example.org'), 3, 'enqueue');

    // Assess
    expect(added).toEqual([[WEBHOOK_PUBLISH_FAILURES, 3]]);
    expect(warn).toHaveBeenCalledWith('webhook publish failed', {
      step: 'enqueue',
      events: 3,
      error: 'Error',
      why: expect.not.stringContaining('ana@example.org'),
    });
  });
});
