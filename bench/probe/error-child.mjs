/**
 * The error path of one bundle in a fresh process: import it (a cold start), make its handler throw
 * from inside the bundle (an event that is not an SQS batch or an HTTP request), and time how long
 * formatting the thrown error's stack takes: the first time (with --enable-source-maps, Node reads
 * and parses the bundle's source map then) and afterwards (median). Reports RSS along the way.
 * Started by bench/source-maps.ts, with and without --enable-source-maps.
 * Plain JavaScript on purpose, like init-child.mjs: a .ts entry would load Node's type stripper.
 * Usage: node [--enable-source-maps] bench/probe/error-child.mjs <bundle.mjs> <runs>
 */
import { pathToFileURL } from 'node:url';

const [file, runsArg] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: error-child.mjs <bundle.mjs> <runs>');
const runs = Number(runsArg ?? 25);
const rssMb = () => process.memoryUsage.rss() / 2 ** 20;
const context = { functionName: 'bench', awsRequestId: 'bench', getRemainingTimeInMillis: () => 30_000 };

const t0 = performance.now();
const mod = await import(pathToFileURL(file).href);
const importMs = performance.now() - t0;
const rssAfterImportMb = rssMb();

async function thrown() {
  try {
    await mod.handler(null, context);
  } catch (error) {
    return error;
  }
  throw new Error(`${file}: the handler did not throw for a null event`);
}

const first = await thrown();
let t = performance.now();
const stack = String(first.stack);
const firstStackMs = performance.now() - t;
const rssAfterFirstStackMb = rssMb();

const later = [];
for (let i = 0; i < runs; i++) {
  const error = await thrown();
  t = performance.now();
  void String(error.stack);
  later.push(performance.now() - t);
}
later.sort((a, b) => a - b);

process.stdout.write(
  JSON.stringify({
    importMs,
    firstStackMs,
    laterStackMs: later[Math.floor(later.length / 2)],
    frames: stack.split('\n').filter((line) => line.trimStart().startsWith('at ')).length,
    // With maps applied, frames name the TypeScript sources instead of index.mjs.
    mappedFrames: stack.split('\n').filter((line) => /\.ts:\d+:\d+/.test(line)).length,
    topFrame: stack
      .split('\n')
      .find((line) => line.trimStart().startsWith('at '))
      ?.trim(),
    rssAfterImportMb,
    rssAfterFirstStackMb,
    rssEndMb: rssMb(),
  }),
);
