/**
 * Read-only questions tools ask of a running local mode (the soak, the benches, the tests): which
 * physical name a function was given for a setting, and how many messages are still on a queue.
 */
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { LocalBaton } from './baton-local.ts';

/** The value a function's environment has for `variable` (a table name, a queue URL). */
export function functionSetting(baton: Pick<LocalBaton, 'pools'>, variable: string): string {
  for (const pool of baton.pools.values()) {
    const value = pool.spec.env[variable];
    if (value) return value;
  }
  throw new Error(`no function has ${variable} in its environment`);
}

/** Messages on a queue: visible, in flight and delayed. */
export async function queueDepth(sqs: SQSClient, url: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return (
    Number(Attributes.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(Attributes.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

/** Messages on every queue an event source reads (the lanes, feedback, erasure), DLQs left out. */
export async function sourceQueuesDepth(
  sqs: SQSClient,
  baton: Pick<LocalBaton, 'plan' | 'queues'>,
): Promise<number> {
  let depth = 0;
  for (const q of baton.plan.queues) {
    const url = q.redrive ? baton.queues.get(q.logicalId)?.url : undefined;
    if (url) depth += await queueDepth(sqs, url);
  }
  return depth;
}
