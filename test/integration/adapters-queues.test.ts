import { type Message, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { SqsJobQueue } from '../../lambdas/adapters/job-queue.ts';
import { queueUrlFromArn, SqsVisibility } from '../../lambdas/adapters/visibility.ts';
import type { SendJob } from '../../lambdas/domain/message.ts';
import { TransientError } from '../../lambdas/shared/errors.ts';
import { type ProvisionedStack, type QueueRef, unreachable } from '../support/emulators.ts';
import { withProvisionedStack } from '../support/provisioned-suite.ts';

const job = (id: string, stream: SendJob['message']['stream']): SendJob => ({
  v: 1,
  id,
  tenant: 'acme',
  message: {
    from: { name: 'Shop', address: 'orders@example.com' },
    to: [{ address: 'ana@example.org' }],
    cc: [],
    bcc: [{ name: 'Ärchiv', address: 'archive@xn--mller-kva.example' }],
    replyTo: [],
    subject: 'Your receipt ✓',
    text: 'Thanks for your order.',
    attachments: [],
    headers: { 'X-Order-Id': '123' },
    tags: { campaign: 'receipts' },
    stream,
    ...(stream === 'broadcast' ? { listUnsubscribe: 'https://example.com/unsub?u=1' } : {}),
  },
});

describe('SQS adapters against fauxqs (lane queues provisioned from the template)', () => {
  let stack: ProvisionedStack;

  withProvisionedStack((started) => {
    stack = started;
  });

  /** Receives whatever is visible on the queue right now (no long poll), all attributes included. */
  const receiveNow = async (queue: QueueRef, visibilityTimeout?: number): Promise<Message[]> => {
    const out = await stack.clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
        ...(visibilityTimeout === undefined ? {} : { VisibilityTimeout: visibilityTimeout }),
      }),
    );
    return out.Messages ?? [];
  };

  describe('SqsJobQueue', () => {
    it.each([
      ['transactional', 'broadcast'],
      ['broadcast', 'transactional'],
    ] as const)(
      'puts a %s job on its own lane queue only, the body being the job as JSON',
      async (lane, other) => {
        // Prepare
        const queue = new SqsJobQueue(stack.clients.sqs, {
          transactional: stack.queues.transactional.url,
          broadcast: stack.queues.broadcast.url,
        });
        const sent = job(`msg_${lane}`, lane);

        // Act
        await queue.enqueue(lane, sent);

        // Assess
        const received = await receiveNow(stack.queues[lane]);
        expect(received.map((m) => m.Body)).toEqual([JSON.stringify(sent)]);
        expect(JSON.parse(received[0]?.Body ?? 'null')).toEqual(sent);
        expect(await receiveNow(stack.queues[other])).toEqual([]);
      },
    );

    it('reports an unreachable queue service as a TransientError naming the lane', async () => {
      // Prepare: nothing listens on port 9, so the request gets no HTTP answer at all
      const dead = new SQSClient({ ...unreachable, useQueueUrlAsEndpoint: false });
      const queue = new SqsJobQueue(dead, {
        transactional: stack.queues.transactional.url,
        broadcast: stack.queues.broadcast.url,
      });

      // Act
      const outcome = queue.enqueue('broadcast', job('msg_dead', 'broadcast'));

      // Assess
      await expect(outcome).rejects.toBeInstanceOf(TransientError);
      await expect(outcome).rejects.toThrow('queueing on the broadcast lane failed:');
      dead.destroy();
    });
  });

  describe('SqsVisibility', () => {
    it('derives the queue URL SQS expects from the event source ARN', () => {
      // Act
      const urls = [
        queueUrlFromArn(stack.queues.transactional.arn),
        queueUrlFromArn('arn:aws-cn:sqs:cn-north-1:123456789012:lane'),
      ];

      // Assess
      expect(urls).toEqual([
        `https://sqs.us-east-1.amazonaws.com/000000000000/${stack.queues.transactional.name}`,
        'https://sqs.cn-north-1.amazonaws.com.cn/123456789012/lane',
      ]);
    });

    it('hides a received message for the delay given, then it comes back', async () => {
      // Prepare
      const queue = stack.queues.transactional;
      await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'delayed' }));
      const [received] = await receiveNow(queue, 0);
      if (!received?.ReceiptHandle) throw new Error('nothing received');
      const visibility = new SqsVisibility(stack.clients.sqs);

      // Act
      await visibility.delay({ eventSourceARN: queue.arn, receiptHandle: received.ReceiptHandle }, 1);

      // Assess
      expect(await receiveNow(queue)).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      const again = await receiveNow(queue);
      expect(again.map((m) => [m.Body, m.Attributes?.ApproximateReceiveCount])).toEqual([['delayed', '2']]);
    });

    it('makes a message visible again at once with a delay of 0', async () => {
      // Prepare
      const queue = stack.queues.broadcast;
      await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'at-once' }));
      const [received] = await receiveNow(queue);
      if (!received?.ReceiptHandle) throw new Error('nothing received');
      expect(await receiveNow(queue)).toEqual([]);
      const visibility = new SqsVisibility(stack.clients.sqs);

      // Act
      await visibility.delay({ eventSourceARN: queue.arn, receiptHandle: received.ReceiptHandle }, 0);

      // Assess
      const again = await receiveNow(queue);
      expect(again.map((m) => m.Body)).toEqual(['at-once']);
    });
  });
});
