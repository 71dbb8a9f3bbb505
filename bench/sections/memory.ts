/**
 * Section memory (issue 7, part 7, the Lambda half): each function's peak memory while handling a
 * full batch, measured in a process of its own running the real bundle (bench/sections/probes.ts),
 * against the memory size the stack configures; and the size the measurements argue for: the
 * cheapest of 128/256/512/1024 MB whose 70 % covers the peak, by the cost model (bench/cost.ts).
 * Below 1,769 MB Lambda gives a function a share of a vCPU in proportion to its memory, so CPU
 * work costs the same GB-s at any size while waiting on AWS (or on the sender's pacer) costs in
 * proportion to the size: the cheapest size depends on how much of a call is CPU.
 *
 * The probes also record each invocation's log volume and AWS usage, which the cost section reads.
 */
import { chooseMemory, type InvocationProfile, loadPrices, MEMORY_HEADROOM } from '../cost.ts';
import { buildBundles } from './bundles.ts';
import { perInvocation, runProbes } from './probes.ts';
import { stackFacts } from './stack.ts';
import type { FunctionName, ProbeFigures, Row, ScenarioFigures, Section, StackFacts } from './types.ts';

/** The invocation profile of a probe scenario, with the sender's pacing where it applies. */
export function profileOf(
  fn: FunctionName,
  s: ScenarioFigures,
  facts: StackFacts,
  lane = 'transactional',
): InvocationProfile {
  const per = perInvocation(s);
  const rate = facts.senderInstanceRate[lane];
  return {
    cpuMs: per.cpuMs,
    calls: per.wire.calls,
    units: s.unitsPerInvocation,
    ...(fn === 'sender' && rate !== undefined ? { paceMs: 1000 / rate } : {}),
  };
}

/** The full-batch scenario of each probed function. */
export const BATCH_SCENARIO: Readonly<Partial<Record<FunctionName, string>>> = {
  api: 'batch',
  sender: 'batch',
  feedback: 'batch delivery',
};

export const section: Section = {
  name: 'memory',
  title: 'peak memory of each function handling a full batch (real bundles, own processes)',
  async run(ctx) {
    const facts = stackFacts(ctx);
    const prices = loadPrices();
    let files: Record<FunctionName, string>;
    const built = ctx.shared.bundles;
    if (built?.api && built.sender && built.feedback && built.erasure) {
      files = {
        api: built.api.file,
        sender: built.sender.file,
        feedback: built.feedback.file,
        erasure: built.erasure.file,
      };
    } else {
      ctx.progress('memory: building the bundles (esbuild, as the stack)');
      const b = await buildBundles(ctx);
      files = { api: b.api.file, sender: b.sender.file, feedback: b.feedback.file, erasure: b.erasure.file };
    }
    const run = await runProbes(ctx, files, facts.memoryMb);
    ctx.shared.probes = run.probes;
    ctx.shared.tableNames = run.tableNames;
    ctx.shared.payloads = {
      jobBytes: run.jobBytes,
      eventBytes: run.eventBytes,
      batchRequestBytes: run.batchRequestBytes,
      singleRequestBytes: run.singleRequestBytes,
    };

    const rows: Row[] = [];
    const recommendations: Record<string, unknown> = {};
    for (const fn of ['api', 'sender', 'feedback', 'erasure'] as const) {
      const probe: ProbeFigures = run.probes[fn];
      const configured = facts.memoryMb[fn];
      rows.push({
        section: 'memory',
        figure: `${fn}: peak RSS, ${probe.peakScenario}`,
        value: probe.peakRssMb,
        unit: 'MB',
        floor: configured,
        ratio: probe.peakRssMb / configured,
        target: `≤ ${Math.round(MEMORY_HEADROOM * 100)} % of configured`,
        pass: probe.peakRssMb <= MEMORY_HEADROOM * configured,
        note: `heap ${probe.peakHeapUsedMb.toFixed(0)} MB at peak; RSS after init ${probe.rssAfterInitMb.toFixed(0)} MB (import ${probe.initMs.toFixed(0)} ms, as deployed)`,
      });
      const scenarioName = BATCH_SCENARIO[fn];
      const s = scenarioName === undefined ? undefined : probe.scenarios[scenarioName];
      if (s === undefined || s.invocations.length === 0) continue;
      const profile = profileOf(fn, s, facts);
      const { choices, best } = chooseMemory(profile, probe.peakRssMb, prices);
      recommendations[fn] = { profile, choices, best: best.memoryMb };
      const unit = fn === 'feedback' ? 'events' : 'messages';
      const configuredChoice = choices.find((c) => c.memoryMb === configured);
      rows.push({
        section: 'memory',
        figure: `${fn}: memory size the measurements argue for`,
        value: best.memoryMb,
        unit: 'MB',
        floor: configured,
        pass: best.memoryMb === configured,
        target: 'configured = cheapest that fits',
        note:
          `Lambda $ per 1M ${unit}, modelled batch of ${profile.units} (${profile.cpuMs.toFixed(1)} ms CPU at 1 vCPU` +
          `${profile.paceMs ? `, paced ${profile.paceMs.toFixed(0)} ms apart` : ''}): ` +
          choices
            .map(
              (c) =>
                `${c.memoryMb} MB ${c.fits ? '' : '(too small) '}$${(c.usdPerUnit * 1e6).toFixed(3)} in ${c.durationMs.toFixed(0)} ms`,
            )
            .join('; ') +
          (configuredChoice && configuredChoice !== best
            ? `; configured ${configured} MB costs ${((configuredChoice.usdPerUnit / best.usdPerUnit - 1) * 100).toFixed(0)} % more`
            : ''),
      });
    }
    ctx.shared.extra = { ...ctx.shared.extra, memoryRecommendations: recommendations };
    return rows;
  },
};
