/**
 * What the bench reads from the synthesized stack (the same template `cdk synth` and local mode
 * use), so its figures follow the code rather than copies of numbers: memory sizes, event source
 * batch sizes, the senders' send plans, the SES events published, and the fixed-cost resources.
 */

import { EnvVar } from '../../lambdas/shared/names.ts';
import { synthTemplate } from '../../local/baton-local.ts';
import { type CfnTemplate, planFromTemplate } from '../../local/plan.ts';
import { FUNCTIONS } from './bundles.ts';
import type { BenchContext, FunctionName, StackFacts } from './types.ts';

type Json = Record<string, unknown>;

/** Metrics an alarm watches (an alarm on a metric-math expression is billed per metric in it). */
function alarmMetrics(properties: Json): number {
  const metrics = properties.Metrics;
  if (!Array.isArray(metrics)) return 1;
  return Math.max(1, (metrics as Json[]).filter((m) => m.MetricStat !== undefined).length);
}

export function factsFromTemplate(template: CfnTemplate): StackFacts {
  const plan = planFromTemplate(template);
  const memoryMb = {} as Record<FunctionName, number>;
  const batchSize: Partial<Record<FunctionName, number>> = {};
  const senderInstanceRate: Record<string, number> = {};
  for (const fn of plan.functions) {
    const name = (Object.entries(FUNCTIONS) as [FunctionName, string][]).find(([, e]) => e === fn.entry)?.[0];
    if (name === undefined) continue;
    memoryMb[name] = Math.max(memoryMb[name] ?? 0, fn.memoryMb);
    const source = plan.eventSources.find((s) => s.function === fn.logicalId);
    if (source) batchSize[name] = source.batchSize;
    const lane = fn.environment[EnvVar.lane];
    if (name === 'sender' && typeof lane === 'string') {
      const rate = Number(fn.environment[EnvVar.maxSendRate]);
      const concurrency = Number(fn.environment[EnvVar.maxConcurrency]);
      senderInstanceRate[lane] = rate / concurrency;
    }
  }
  const resources = Object.values(template.Resources);
  const alarms = resources.filter((r) => r.Type === 'AWS::CloudWatch::Alarm');
  return {
    memoryMb,
    batchSize,
    alarms: alarms.length,
    alarmMetrics: alarms.reduce((n, a) => n + alarmMetrics((a.Properties ?? {}) as Json), 0),
    dashboards: resources.filter((r) => r.Type === 'AWS::CloudWatch::Dashboard').length,
    kmsKeys: resources.filter((r) => r.Type === 'AWS::KMS::Key').length,
    secrets: resources.filter((r) => r.Type === 'AWS::SecretsManager::Secret').length,
    polledQueues: plan.eventSources.length,
    publishedEvents: plan.eventDestinations.flatMap((d) => d.eventTypes),
    senderInstanceRate,
  };
}

let cached: StackFacts | undefined;

/** The stack's facts, synthesized once per run (about half a second, no bundling). */
export function stackFacts(ctx: BenchContext): StackFacts {
  if (cached === undefined) {
    cached = factsFromTemplate(synthTemplate('example.com'));
    ctx.shared.stack = cached;
  }
  return cached;
}
