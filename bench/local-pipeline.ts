/**
 * Local mode for the pipeline benches: the real stack (its template, handlers, queues and
 * event sources) on the emulators, driven over HTTP. Nothing here is timed inside `npm test`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvVar } from '../lambdas/shared/names.ts';
import { type LocalBaton, type LocalOptions, startLocal } from '../local/baton-local.ts';
import { TEN_KB_MESSAGE } from './support.ts';

export const BENCH_KEY = 'bt_benchlocalkey01_abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const SIM = 'simulator.amazonses.com';

export interface BenchBaton {
  readonly baton: LocalBaton;
  close(): Promise<void>;
}

/**
 * Local mode as deployed, with the sender concurrency of a 50/s SES quota and no pacing (the
 * bench measures Baton, not the 14/s quota a new account starts with).
 */
export async function startBenchBaton(options: LocalOptions = {}): Promise<BenchBaton> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  const baton = await startLocal({
    port: 0,
    stateDir: dir,
    apiKey: BENCH_KEY,
    // SES publishes its events a moment after it answers SendEmail (about a second, deployed).
    eventDelayMs: 100,
    // Sized for a 50/s SES quota (5 transactional and 2 broadcast senders) rather than a new
    // account's 14/s, and not paced: the figures are Baton's capacity, not the quota's.
    context: { maxSendRate: '50' },
    ...options,
    functionEnvironment: {
      [EnvVar.maxSendRate]: '100000',
      // Its load is the mailbox simulator's, which the abuse guard leaves out deployed (local mode
      // counts it): a bench sending thousands an hour from a new key would be throttled as a volume
      // spike. The guard's own cost is priced by its section (bench/sections/guard.ts).
      [EnvVar.guardCountSimulator]: '0',
      ...options.functionEnvironment,
    },
  });
  return {
    baton,
    async close() {
      await baton.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The bench's 10 KB, one-recipient message to a simulator mailbox that delivers. */
export function benchMessage(label: string, stream: 'transactional' | 'broadcast' = 'transactional') {
  return {
    ...TEN_KB_MESSAGE,
    to: [`success+${label}@${SIM}`],
    stream,
    ...(stream === 'broadcast' ? { listUnsubscribe: 'https://example.com/unsubscribe?u=1' } : {}),
  };
}

export interface Posted {
  /** Baton message id → when its 202/207 arrived (ms, performance.now()). */
  readonly acceptedAt: Map<string, number>;
  /** Per HTTP request, ms. */
  readonly requestMs: number[];
  readonly firstPostAt: number;
  readonly lastAcceptAt: number;
}

/**
 * Posts `bodies` (single messages, or batches when `batch` is set) with at most `concurrency`
 * requests in flight; a request answered other than 202/207 fails the bench.
 */
export async function postAll(
  baton: LocalBaton,
  units: ReadonlyArray<{ readonly route: string; readonly body: unknown }>,
  concurrency: number,
): Promise<Posted> {
  const acceptedAt = new Map<string, number>();
  const requestMs: number[] = [];
  const firstPostAt = performance.now();
  let next = 0;
  const worker = async () => {
    for (let unit = units[next++]; unit; unit = units[next++]) {
      const t0 = performance.now();
      const res = await fetch(`${baton.url}${unit.route}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${baton.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(unit.body),
      });
      const json = (await res.json()) as Record<string, unknown>;
      const t1 = performance.now();
      requestMs.push(t1 - t0);
      if (res.status === 202) acceptedAt.set(String(json.id), t1);
      else if (res.status === 207) {
        for (const r of json.results as Array<{ id?: string; status?: unknown }>) {
          if (typeof r.id !== 'string') throw new Error(`a batch entry was refused: ${JSON.stringify(r)}`);
          acceptedAt.set(r.id, t1);
        }
      } else throw new Error(`${unit.route} answered ${res.status}: ${JSON.stringify(json).slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, units.length) }, worker));
  return { acceptedAt, requestMs, firstPostAt, lastAcceptAt: performance.now() };
}

/**
 * Waits until SES took every message in `ids` (the stand-in writes the outbox file before it
 * answers), and returns when each one did, on the performance.now() clock.
 */
export async function outboxTimes(
  baton: LocalBaton,
  ids: ReadonlySet<string>,
  timeoutMs: number,
): Promise<Map<string, number>> {
  // The stand-in stamps sends with Date; move them onto the performance clock used for posting.
  const offset = performance.now() - Date.now();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const times = new Map<string, number>();
    for (const s of baton.ses.sent()) {
      if (s.batonMessageId && ids.has(s.batonMessageId) && !times.has(s.batonMessageId))
        times.set(s.batonMessageId, s.acceptedAt.getTime() + offset);
    }
    if (times.size >= ids.size) return times;
    if (Date.now() > deadline)
      throw new Error(`only ${times.size} of ${ids.size} messages reached SES within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/**
 * Peak resident memory of this process and every process under it (the function processes), in
 * MB, sampled every `everyMs` until `stop()` is called.
 */
export function sampleTreeRss(everyMs = 250): { stop(): number } {
  let peak = 0;
  const sample = () => {
    const total = treeRssKb(process.pid);
    if (total > peak) peak = total;
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak / 1024;
    },
  };
}

function treeRssKb(pid: number): number {
  let kb = 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    kb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const child of children ? children.split(/\s+/) : []) kb += treeRssKb(Number(child));
  } catch {
    // The process ended between listing and reading.
  }
  return kb;
}
