/**
 * Where a CPU profile's time went, by source: `node bench/profile.ts <file.cpuprofile> [top]`.
 * Frames in a bundle are mapped back through the bundle's source map (index.mjs.map beside it), so
 * a minified handler reads as packages and files. Self time, summed by package (or by file under
 * lambdas/), then the hottest functions. For the probes: BENCH_PROBE_CPU_PROF=<dir> BENCH_KEEP_TMP=1
 * npm run bench -- --only=memory, then this on each profile.
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { printTable } from './support.ts';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const maps = new Map<string, SourceMap | undefined>();
function mapFor(url: string): SourceMap | undefined {
  if (!maps.has(url)) {
    let map: SourceMap | undefined;
    try {
      const file = `${fileURLToPath(url)}.map`;
      if (existsSync(file)) map = new SourceMap(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      map = undefined;
    }
    maps.set(url, map);
  }
  return maps.get(url);
}

/** `package` for node_modules, `lambdas/<dir>/<file>` for Baton, `(node)` / `(v8)` otherwise. */
function where(frame: CallFrame): { group: string; at: string } {
  if (frame.url === '') return { group: `(${frame.functionName || 'v8'})`, at: frame.functionName || '(v8)' };
  let source = frame.url;
  let line = frame.lineNumber + 1;
  let name = frame.functionName;
  const map = frame.url.startsWith('file:') ? mapFor(frame.url) : undefined;
  if (map) {
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as {
      originalSource?: string;
      originalLine?: number;
      name?: string;
    };
    if (entry.originalSource) {
      source = entry.originalSource;
      line = (entry.originalLine ?? 0) + 1;
      name = entry.name ?? name;
    }
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(source)?.[1];
  const baton = /(lambdas\/.*)$/.exec(source)?.[1];
  const group = pkg ?? baton ?? (source.startsWith('node:') ? '(node)' : source);
  return {
    group,
    at: `${name || '(anonymous)'} ${(baton ?? source).split('/').slice(-2).join('/')}:${line}`,
  };
}

const file = process.argv[2];
if (file === undefined) throw new Error('usage: node bench/profile.ts <file.cpuprofile> [top]');
const top = Number(process.argv[3] ?? 15);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const groups = new Map<string, number>();
const functions = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  const node = byId.get(id);
  if (!node || node.callFrame.functionName === '(idle)') return;
  total += us;
  const { group, at } = where(node.callFrame);
  groups.set(group, (groups.get(group) ?? 0) + us);
  functions.set(at, (functions.get(at) ?? 0) + us);
});
const rank = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => [k, `${(us / 1000).toFixed(1)} ms`, `${((us / total) * 100).toFixed(1)} %`]);
printTable(
  `${file}: ${(total / 1000).toFixed(0)} ms busy (idle excluded), self time by source`,
  rank(groups),
);
printTable('hottest functions (self time)', rank(functions));
