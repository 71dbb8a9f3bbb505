import { confirmationWindowSeconds } from '../lambdas/shared/event-path.ts';
import type { LocalPlan } from './plan.ts';

/**
 * The feedback queue's visibility timeout in local mode. Deployed it is 185 s (six times the
 * function timeout): locally a failed event (the soak fails DynamoDB calls on purpose) comes back
 * within seconds, so the confirmation window derived from it is seconds, not minutes.
 */
export const LOCAL_EVENT_VISIBILITY_SECONDS = 10;

/** What SNS → SQS adds locally after the stand-in publishes, rounded up. */
const LOCAL_PUBLISH_SECONDS = 1;

export interface LocalEventPath {
  /** The plan with the event path's queues on local mode's visibility timeout. */
  readonly plan: LocalPlan;
  /** Seconds a local sender waits for SES's evidence after an ambiguous answer. */
  readonly confirmationWindowSeconds: number;
}

/**
 * Local mode's own event path settings, and the confirmation window derived from them the same way
 * the stack derives it from the deployed ones (shared/event-path.ts): the stand-in's event delay,
 * the feedback event source's batching window (as capped locally) and its queue's visibility.
 */
export function localEventPath(
  plan: LocalPlan,
  settings: { readonly eventDelayMs: number; readonly maxBatchingWindowSeconds?: number },
): LocalEventPath {
  const topics = new Set(plan.eventDestinations.map((d) => d.topic));
  const queues = new Set(plan.subscriptions.filter((s) => topics.has(s.topic)).map((s) => s.queue));
  const batching = Math.max(
    0,
    ...plan.eventSources
      .filter((e) => queues.has(e.queue))
      .map((e) =>
        Math.min(e.maxBatchingWindowSeconds, settings.maxBatchingWindowSeconds ?? Number.POSITIVE_INFINITY),
      ),
  );
  const visibility = (timeout: number | undefined) => Math.min(timeout ?? 30, LOCAL_EVENT_VISIBILITY_SECONDS);
  return {
    plan: {
      ...plan,
      queues: plan.queues.map((q) =>
        queues.has(q.logicalId) ? { ...q, visibilityTimeout: visibility(q.visibilityTimeout) } : q,
      ),
    },
    confirmationWindowSeconds: confirmationWindowSeconds({
      publishSeconds: settings.eventDelayMs / 1000 + LOCAL_PUBLISH_SECONDS,
      batchingWindowSeconds: batching,
      visibilitySeconds: Math.max(
        0,
        ...plan.queues.filter((q) => queues.has(q.logicalId)).map((q) => visibility(q.visibilityTimeout)),
      ),
    }),
  };
}
