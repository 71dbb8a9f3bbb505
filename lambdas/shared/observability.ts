import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, type MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import { METRICS_NAMESPACE } from './names.ts';
import { redactAddresses } from './redact.ts';

/**
 * One logger and one metrics instance per function (the service name comes from
 * POWERTOOLS_SERVICE_NAME, set by the stack). Log a message plus an object of ids and counts:
 * never bodies, never full addresses (error texts go through `describeError`).
 */
export const logger = new Logger();

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE });

export function describeError(error: unknown): { error: string; why: string } {
  return error instanceof Error
    ? { error: error.name, why: redactAddresses(error.message) }
    : { error: 'unknown', why: 'unknown error' };
}

/**
 * Flushes the metrics a request added, as one EMF line. Unlike Powertools' `logMetrics`, it writes
 * nothing when there is nothing to say (no empty-metrics warning on every read request: log lines
 * cost money, see bench/).
 */
export function publishMetrics(): MiddlewareObj {
  const flush = async (): Promise<void> => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  return { after: flush, onError: flush };
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/**
 * Metrics by `stream` for a batch that mixes streams (feedback): kept per stream and written as one
 * EMF line per stream when the batch is done. The dimension set is {service, stream}: low
 * cardinality, never per tenant or address.
 */
export class StreamMetrics {
  readonly #byStream = new Map<string, Array<{ name: string; unit: Unit; value: number }>>();

  add(stream: string, name: string, unit: Unit, value: number): void {
    const list = this.#byStream.get(stream) ?? [];
    list.push({ name, unit, value });
    this.#byStream.set(stream, list);
  }

  flush(): void {
    for (const [stream, list] of this.#byStream) {
      const m = new Metrics({ namespace: METRICS_NAMESPACE, defaultDimensions: { stream } });
      for (const { name, unit, value } of list) m.addMetric(name, unit, value);
      m.publishStoredMetrics();
    }
    this.#byStream.clear();
  }
}
