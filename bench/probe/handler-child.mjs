/**
 * One function instance for the memory section: imports a handler bundle (built as the stack builds
 * it) with the function's environment, then runs the invocations the parent sends over IPC, one at
 * a time, like Lambda. For each it reports CPU and wall time, the bytes and lines the handler wrote
 * to stdout/stderr (its CloudWatch log volume: Powertools JSON logs and EMF metrics; the output
 * itself is dropped), and memory: resident set size now and at its peak over the process's life
 * (`maxRSS`, what Lambda reports as Max Memory Used) and the heap, sampled every 5 ms.
 * Plain JavaScript on purpose: a .ts entry would load Node's type stripper (~17 MB) into the
 * memory it measures.
 * Usage: node bench/probe/handler-child.mjs <bundle.mjs> (with an IPC channel).
 */
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';

/** With BENCH_PROBE_LOG_FILE set, what the handler writes is also appended there (to read it). */
const keep = process.env.BENCH_PROBE_LOG_FILE;

const log = { bytes: 0, lines: 0, emfBytes: 0 };
/** @type {string[]} */
const tail = [];
/** Custom metrics seen in EMF lines: `namespace|name|dimension=value,…`. */
const metrics = new Set();

/** @param {string} line */
function noteMetrics(line) {
  let emf;
  try {
    emf = JSON.parse(line);
  } catch {
    return;
  }
  for (const directive of emf._aws?.CloudWatchMetrics ?? []) {
    for (const dims of directive.Dimensions) {
      const set = dims.map((d) => `${d}=${String(emf[d])}`).join(',');
      for (const m of directive.Metrics) metrics.add(`${directive.Namespace}|${m.Name}|${set}`);
    }
  }
}

/**
 * @param {NodeJS.WriteStream} stream
 * @param {boolean} keepTail
 */
function capture(stream, keepTail) {
  // Replaces the stream's write: counts what a handler would send to CloudWatch, writes nothing.
  stream.write = (chunk, encoding, callback) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    if (keep) appendFileSync(keep, text);
    log.bytes += Buffer.byteLength(text);
    for (const c of text) if (c === '\n') log.lines += 1;
    if (text.includes('"_aws"')) {
      for (const line of text.split('\n')) {
        if (!line.includes('"_aws"')) continue;
        log.emfBytes += Buffer.byteLength(line) + 1;
        noteMetrics(line);
      }
    }
    if (keepTail) {
      tail.push(text);
      if (tail.length > 20) tail.shift();
    }
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') queueMicrotask(() => done());
    return true;
  };
}
capture(process.stdout, false);
capture(process.stderr, true);

/** @param {number} bytes */
const mb = (bytes) => bytes / 2 ** 20;
let peakHeap = 0;
// v8's heap statistics are cheap to read (process.memoryUsage() also reads /proc, which would
// show up in the CPU the probe measures); RSS at its peak comes from resourceUsage().maxRSS.
const sample = () => {
  const heap = getHeapStatistics().used_heap_size;
  if (heap > peakHeap) peakHeap = heap;
};
setInterval(sample, 5).unref();

/** @param {object} message */
function reply(message) {
  process.send?.(message);
}

const file = process.argv[2];
/** @type {(event: unknown, context: unknown) => Promise<unknown>} */
let handler;
try {
  if (file === undefined) throw new Error('usage: handler-child.mjs <bundle.mjs>');
  const t0 = performance.now();
  const mod = await import(pathToFileURL(file).href);
  const initMs = performance.now() - t0;
  if (typeof mod.handler !== 'function') throw new Error(`${file} exports no handler`);
  handler = mod.handler;
  sample();
  reply({
    type: 'ready',
    initMs,
    rssMb: mb(process.memoryUsage.rss()),
    heapUsedMb: mb(process.memoryUsage().heapUsed),
    logBytes: log.bytes,
  });
} catch (error) {
  reply({
    type: 'error',
    error: `${error instanceof Error ? error.stack : String(error)}\n${tail.join('')}`,
  });
  process.exit(1);
}

const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'bench';
process.on('message', async (message) => {
  if (message.type === 'exit') {
    process.exit(0);
  }
  if (message.type !== 'invoke') return;
  const deadline = Date.now() + 30_000;
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '256',
    awsRequestId: `00000000-0000-4000-8000-${String(message.id).padStart(12, '0')}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'bench',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
  const bytes0 = log.bytes;
  const lines0 = log.lines;
  const emf0 = log.emfBytes;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const result = await handler(message.event, context);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    sample();
    reply({
      type: 'result',
      id: message.id,
      result,
      cpuUs: cpu.user + cpu.system,
      wallMs,
      logBytes: log.bytes - bytes0,
      logLines: log.lines - lines0,
      emfBytes: log.emfBytes - emf0,
      metrics: [...metrics],
      rssMb: mb(process.memoryUsage.rss()),
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      peakHeapMb: mb(peakHeap),
    });
  } catch (error) {
    reply({
      type: 'error',
      id: message.id,
      error: `${error instanceof Error ? error.stack : String(error)}\n${tail.join('')}`,
    });
  }
});
