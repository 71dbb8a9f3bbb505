import '../../support/quiet-powertools.ts';
import { type AddressInfo, connect } from 'node:net';
import fc from 'fast-check';
import { generate } from 'selfsigned';
import type { SMTPServer } from 'smtp-server';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ApiKey } from '../../../lambdas/domain/keys/api-key.ts';
import type { MessageRecord } from '../../../lambdas/domain/message.ts';
import { RateLimiter } from '../../../lambdas/domain/send/rate-limit.ts';
import { logger } from '../../../lambdas/shared/observability.ts';
import { BatonSmtp } from '../../../lambdas/smtp/server.ts';
import { suppression } from '../../support/builders.ts';
import {
  InMemoryApiKeys,
  InMemoryIdempotencyStore,
  InMemoryMessageStore,
  issueApiKey,
} from '../../support/fakes.ts';
import { acceptHarness } from '../../support/harness.ts';
import { type FuzzStep, playSession, type SessionLog, sessionScript } from '../../support/smtp-fuzz.ts';

// Issue 12: random SMTP sessions (command sequences with random arguments, pipelined bursts,
// STARTTLS, AUTH with good and bad keys, DATA with random header and body bytes: NUL, bare CR and
// LF, 8-bit, overlong lines, oversized bodies; resends of the same message; connections dropped
// mid-DATA and right after it) played over real sockets against BatonSmtp on 127.0.0.1, over
// in-memory fakes. Each run varies the server (local or not, with a certificate or not, STARTTLS
// or implicit TLS, a no-AUTH relay key for 127.0.0.0/8 or not, no key for the source at all, the
// sender policy, the size limit), injects faults (record writes, enqueues, suppression reads, key
// reads at connect), may shut the server down mid-session, and may play one session twice at
// once. What every run is held to:
// - The server never crashes: nothing escapes a handler (an uncaught error or an unhandled
//   rejection breaks the rule), and nothing is logged as an unexpected failure but the faults the
//   run injected.
// - Every command written on an open connection gets exactly one reply, every reply line is
//   well-formed (`^\d{3}[ -]`, CRLF, at most 512 octets, one code per multi-line reply); the
//   server closes a connection only after a 421 or a 221, or a 554 in place of the greeting.
// - Never a half-queued message: every job in the queue has its record and is enqueued once;
//   every record is `queued` with exactly one job, or has no job and is `suppressed` (nothing to
//   send) or `failed` for good (its enqueue failed, and the client was told to retry).
// - Every 250 at the end of DATA names a record that stands: `queued as <id>` a queued record with
//   its job, `recorded as <id>` a suppressed one. A `failed` record was never answered 250.
// - No message stands without its 250, except where the client did not read it: the number of
//   queued or suppressed records no 250 named is at most the number of end-of-DATA terminators
//   whose reply the client did not read (it closed the connection right after sending one, or the
//   connection closed before the reply came). Records are not tied to sessions (the fuzz's
//   messages are alike), so this is a count, not a pairing.

/**
 * Runs in `npm test`: 30, about 5 s (smtp-server holds each greeting back 100 ms to catch clients
 * that talk too soon). `npm run soak` sets BATON_FUZZ_RUNS (100,000 for the suites whose default is
 * 10,500) and this suite grows in the same proportion (about 290 runs).
 */
const DEFAULT_TOTAL = 10_500;
const SCALE = Math.max(1, Number(process.env.BATON_FUZZ_RUNS ?? DEFAULT_TOTAL) / DEFAULT_TOTAL);
const RUNS = Math.ceil(30 * SCALE);
/**
 * BATON_FUZZ_SEED replaces the fixed default seed (a failure prints fast-check's seed and path).
 * Fixed, so `npm test` plays the same sessions each time; only the order in which concurrent
 * sessions reach the stores varies.
 */
const SEED = Number(process.env.BATON_FUZZ_SEED ?? 12_122_026);

/** A fault the run injects; the only failure the server may log as unexpected. */
class InjectedFaultError extends Error {
  override readonly name = 'InjectedFaultError';
}

/** Remembers every record written, and fails the writes of the ids it is told to. */
class FuzzMessageStore extends InMemoryMessageStore {
  readonly ids = new Set<string>();
  readonly failing = new Set<string>();

  override async create(record: MessageRecord): Promise<void> {
    if (this.failing.has(record.id)) throw new InjectedFaultError(`record write of ${record.id}`);
    await super.create(record);
    this.ids.add(record.id);
  }

  override async createMany(records: readonly MessageRecord[]): Promise<void> {
    for (const r of records) await this.create(r);
  }
}

interface World {
  /** Local mode: AUTH offered without STARTTLS. */
  readonly local: boolean;
  readonly tls: boolean;
  /** The port 465 server: TLS from the first byte (only with a certificate). */
  readonly implicitTls: boolean;
  /** A key relays for 127.0.0.0/8 without AUTH. */
  readonly relay: boolean;
  /** Some key allows connections from 127.0.0.1. */
  readonly sourceAllowed: boolean;
  readonly policy: 'reject' | 'rewrite';
  readonly maxBytes: number;
  /** Message numbers (msg_<n>) whose record write, or enqueue, fails. */
  readonly recordFaults: readonly number[];
  readonly queueFaults: readonly number[];
  /** Shut the server down this many ms after the sessions start (SIGTERM mid-session). */
  readonly drainAfterMs: number | undefined;
  /** Calls (1-based) of the stats write, and of the suppression read, that fail. */
  readonly statFaults: readonly number[];
  readonly lookupFaults: readonly number[];
  /** Reads of every key (at connect) that fail. */
  readonly directoryFaults: readonly number[];
  readonly sessions: readonly (readonly FuzzStep[])[];
}

let certificate: { key: string; cert: string };

beforeAll(async () => {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
  });
  certificate = { key: pems.private, cert: pems.cert };
});

afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * Keys issued once (their tokens go into the scripts); each run stores them afresh, the main key
 * with the run's sender policy.
 */
const MAIN = issueApiKey();
const LIMITED = issueApiKey({ dailyQuota: 2, rateLimit: 2 });
const READ_ONLY = issueApiKey({ scopes: ['read'] });
const SUSPENDED = issueApiKey({ status: 'suspended' });
const RELAY = {
  ...issueApiKey({ allowedCidrs: ['127.0.0.0/8'], scopes: ['send'] }).key,
  smtpWithoutAuth: true,
} as ApiKey;
/** The main key's first: the scripts authenticate with it on their way to DATA. */
const TOKENS = [MAIN.token, LIMITED.token, READ_ONLY.token, SUSPENDED.token];

function keysFor(world: World): ApiKey[] {
  const main: ApiKey = {
    ...MAIN.key,
    senderPolicy: world.policy,
    ...(world.policy === 'rewrite' ? { defaultFrom: 'noreply@example.com' } : {}),
  };
  const keys = [main, LIMITED.key, READ_ONLY.key, SUSPENDED.key, ...(world.relay ? [RELAY] : [])];
  // No key for this network: every connection is refused with 554 before the greeting.
  return world.sourceAllowed ? keys : keys.map((k) => ({ ...k, allowedCidrs: ['10.0.0.0/8'] }));
}

/** Makes the `calls`-th calls (1-based) of `target[method]` fail, as a throttled table would. */
function withFaults<T extends object>(target: T, method: keyof T & string, calls: readonly number[]): T {
  failCalls(target, method, calls);
  return target;
}

function failCalls<T extends object>(target: T, method: keyof T & string, calls: readonly number[]): void {
  const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
  let made = 0;
  Object.assign(target, {
    [method]: async (...args: unknown[]) => {
      made += 1;
      if (calls.includes(made)) throw new InjectedFaultError(`${method} call ${made}`);
      return original(...args);
    },
  });
}

/** Starts BatonSmtp for one run; `idle()` resolves once no DATA is being handled. */
async function startServer(world: World, keys: readonly ApiKey[]) {
  const messages = new FuzzMessageStore();
  for (const n of world.recordFaults) messages.failing.add(`msg_${n}`);
  const harness = acceptHarness({}, { messages });
  harness.suppressions.seed(suppression('gone@example.org', 'complaint'));
  for (const n of world.queueFaults) harness.queue.failing.add(`msg_${n}`);
  failCalls(harness.usage, 'addStats', world.statFaults);
  failCalls(harness.suppressions, 'getMany', world.lookupFaults);
  const reader = new InMemoryApiKeys().add(...keys);
  const smtp = new BatonSmtp(
    {
      ...harness.deps,
      keys: reader,
      directory: withFaults({ list: async () => [...keys] }, 'list', world.directoryFaults),
      rateLimiter: new RateLimiter(harness.clock),
      idempotency: new InMemoryIdempotencyStore(),
    },
    {
      hostname: 'fuzz.example',
      maxBytes: world.maxBytes,
      maxJobBytes: 2 * world.maxBytes + 100_000,
      local: world.local,
      ...(world.tls ? { tls: certificate } : {}),
      socketTimeoutMs: 30_000,
      drainMs: 1_000,
    },
  );
  const server = smtp.createServer(world.implicitTls);
  let inFlight = 0;
  const onData = server.onData.bind(server);
  server.onData = (stream, session, callback) => {
    inFlight += 1;
    onData(stream, session, (error, message) => {
      inFlight -= 1;
      callback(error, message);
    });
  };
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.server.address() as AddressInfo).port)),
  );
  let draining: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    draining ??= smtp.drain();
    return draining;
  };
  return {
    port,
    messages,
    /** Shuts the server down as SIGTERM does (421 to new commands, DATA in flight finishes). */
    drain,
    draining: () => draining !== undefined,
    queue: harness.queue,
    /** Waits until every connection is gone and every DATA answered (or its answer dropped). */
    async settle(): Promise<void> {
      const open = (server as SMTPServer & { connections: Set<unknown> }).connections;
      for (let waited = 0; (inFlight > 0 || open.size > 0) && waited < 10_000; waited += 5) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await drain();
      // Stats of a transaction ended by a close are written without being awaited.
      await new Promise((r) => setImmediate(r));
    },
  };
}

/** Every broken rule of the run, in words (empty when it kept them all). */
function violations(
  logs: readonly SessionLog[],
  messages: FuzzMessageStore,
  queue: { jobs: ReadonlyArray<{ job: { id: string } }> },
  unexpected: readonly unknown[][],
): string[] {
  const found = logs.flatMap((l, i) => l.violations.map((v) => `session ${i}: ${v}`));
  for (const call of unexpected) found.push(`logged as unexpected: ${JSON.stringify(call).slice(0, 300)}`);
  const jobs = new Map<string, number>();
  for (const { job } of queue.jobs) jobs.set(job.id, (jobs.get(job.id) ?? 0) + 1);
  for (const [id, n] of jobs) {
    if (!messages.ids.has(id)) found.push(`job ${id} has no record`);
    if (n > 1) found.push(`job ${id} enqueued ${n} times`);
  }
  const records = new Map<string, MessageRecord>();
  for (const id of messages.ids) {
    const r = messages.peek(id);
    if (r) records.set(id, r);
  }
  for (const r of records.values()) {
    const n = jobs.get(r.id) ?? 0;
    if (r.phase === 'queued' && n !== 1) found.push(`record ${r.id} is queued with ${n} jobs (half-queued)`);
    if (r.phase !== 'queued' && n !== 0) found.push(`record ${r.id} is ${r.phase} but has a job`);
    if (r.phase !== 'queued' && r.phase !== 'suppressed' && r.phase !== 'failed') {
      found.push(`record ${r.id} is ${r.phase} before any sender ran`);
    }
    if (r.phase === 'failed' && r.redrivable) found.push(`unqueued record ${r.id} is redrivable`);
  }
  const answered = new Set<string>();
  for (const { id, queued } of logs.flatMap((l) => l.accepted)) {
    answered.add(id);
    const r = records.get(id);
    if (!r) found.push(`250 names ${id}, which has no record`);
    else if (queued && r.phase !== 'queued') found.push(`250 "queued as ${id}" but the record is ${r.phase}`);
    else if (!queued && r.phase !== 'suppressed')
      found.push(`250 "recorded as ${id}" but the record is ${r.phase}`);
  }
  const lost = logs.reduce((sum, l) => sum + l.lostReplies, 0);
  const standing = [...records.values()].filter((r) => r.phase !== 'failed' && !answered.has(r.id));
  if (standing.length > lost) {
    found.push(
      `${standing.length} records stand without a 250 (${standing.map((r) => r.id).join(', ')}), ` +
        `only ${lost} end-of-DATA replies went unread`,
    );
  }
  return found;
}

const world: fc.Arbitrary<World> = fc
  .record({
    local: fc.boolean(),
    tls: fc.boolean(),
    relay: fc.boolean(),
    implicitTls: fc.oneof(
      { weight: 3, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
    sourceAllowed: fc.oneof(
      { weight: 9, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    policy: fc.constantFrom('reject' as const, 'rewrite' as const),
    maxBytes: fc.constantFrom(4_000, 64_000, 1_000_000),
    recordFaults: fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 2 }),
    queueFaults: fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 2 }),
    // None in the property: UsageStore.addStats never throws (its contract, ports.ts: a stats write
    // must not undo an accepted message); the two tests below cover the SMTP server's own writes.
    statFaults: fc.constant([]),
    lookupFaults: fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 2 }),
    directoryFaults: fc.oneof(
      { weight: 7, arbitrary: fc.constant([]) },
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 3 })) },
    ),
    drainAfterMs: fc.option(fc.integer({ min: 0, max: 400 }), { nil: undefined, freq: 4 }),
    sessionCount: fc.integer({ min: 1, max: 3 }),
    mirror: fc.oneof(
      { weight: 3, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
  })
  .chain(({ sessionCount, implicitTls, mirror, ...w }) =>
    fc.array(sessionScript(TOKENS), { minLength: sessionCount, maxLength: sessionCount }).map((sessions) => ({
      ...w,
      implicitTls: implicitTls && w.tls,
      // Two connections sending the same messages at once (a client retrying on a new connection
      // while the first still waits): the resend rule must not queue one twice.
      sessions: mirror && sessions[0] ? [sessions[0], ...sessions] : sessions,
    })),
  );

async function run(w: World): Promise<{ accepted: number; found: string[]; logs: SessionLog[] }> {
  const errors = vi.spyOn(logger, 'error');
  // A promise nobody awaits that rejects ends a Node process (the server's, deployed).
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  const server = await startServer(w, keysFor(w));
  const logs: SessionLog[] = [];
  const timer =
    w.drainAfterMs === undefined ? undefined : setTimeout(() => void server.drain(), w.drainAfterMs);
  try {
    // At once, as a client's connection pool would (and each waits smtp-server's 100 ms before its greeting).
    logs.push(
      ...(await Promise.all(
        w.sessions.map((script) =>
          playSession(server.port, script, {
            ca: certificate.cert,
            implicitTls: w.implicitTls,
            draining: server.draining,
          }),
        ),
      )),
    );
  } finally {
    clearTimeout(timer);
    await server.settle();
  }
  const unexpected = errors.mock.calls.filter(
    ([, extra]) => (extra as { error?: string } | undefined)?.error !== 'InjectedFaultError',
  );
  errors.mockRestore();
  await new Promise((r) => setImmediate(r));
  process.off('unhandledRejection', onRejection);
  for (const reason of rejections) unexpected.push(['unhandled rejection', String(reason)]);
  return {
    accepted: logs.reduce((n, l) => n + l.accepted.length, 0),
    found: violations(logs, server.messages, server.queue, unexpected),
    logs,
  };
}

describe(`SMTP sessions under random input: ${RUNS} runs (BATON_FUZZ_RUNS)`, {
  timeout: 120_000 * SCALE,
}, () => {
  it('never crashes, answers every command with a well-formed reply and never leaves a message half-queued', async () => {
    let runs = 0;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        const outcome = await run(w);
        expect(outcome.found).toEqual([]);
        runs += 1;
        accepted += outcome.accepted;
      }),
      { numRuns: RUNS, seed: SEED },
    );
    // The scripts lean towards complete transactions: a fuzz that never reached a 250 proved little.
    // With the real message reader (it refuses a malformed head) and the injected faults, about
    // one run in ten ends in a 250 (25 of 286 at seeds 22 and 33); one in twenty is the floor.
    expect(runs).toBe(RUNS);
    expect(accepted).toBeGreaterThanOrEqual(RUNS / 20);
  });
});

/** Runs the fuzz found a broken rule in, kept as they were shrunk (fast-check seed in the name). */
describe('SMTP fuzz findings', () => {
  const line = (text: string): FuzzStep => ({ kind: 'line', bytes: Buffer.from(text) });
  const base = {
    local: true,
    tls: true,
    relay: true,
    implicitTls: false,
    sourceAllowed: true,
    policy: 'reject',
    maxBytes: 1_000_000,
    recordFaults: [],
    queueFaults: [],
    statFaults: [],
    lookupFaults: [],
    directoryFaults: [],
    drainAfterMs: undefined,
  } as const;

  const transaction = (content: string, ending: 'end' | 'cut'): FuzzStep => ({
    kind: 'transaction',
    commands: [
      Buffer.from('MAIL FROM:<app@example.com>'),
      Buffer.from('RCPT TO:<success@simulator.amazonses.com>'),
      Buffer.from('DATA'),
    ],
    pipelined: false,
    content: Buffer.from(content),
    ending,
  });

  it('takes a client that leaves mid-DATA as the client leaving, not as a server failure (seed 1226450530)', async () => {
    const outcome = await run({
      ...base,
      sessions: [[line('EHLO client.example'), transaction('\r\n', 'cut')]],
    });
    expect(outcome.found).toEqual([]);
  });

  it('closes with a 421 when it cannot read the keys at connect', async () => {
    const outcome = await run({
      ...base,
      directoryFaults: [1],
      sessions: [[line('EHLO client.example'), line('NOOP')]],
    });
    expect(outcome.found).toEqual([]);
  });

  it('survives a failed stats write for a transaction whose every recipient was refused, ended by a close', async () => {
    const outcome = await run({
      ...base,
      statFaults: [1],
      sessions: [
        [
          line('EHLO client.example'),
          line('MAIL FROM:<app@example.com>'),
          line('RCPT TO:<gone@example.org>'),
          { kind: 'close' },
        ],
      ],
    });
    expect(outcome.found).toEqual([]);
  });

  it('lets the next MAIL through when the stats write for the previous, wholly refused transaction fails', async () => {
    const outcome = await run({
      ...base,
      statFaults: [1],
      sessions: [
        [
          line('EHLO client.example'),
          line('MAIL FROM:<app@example.com>'),
          line('RCPT TO:<gone@example.org>'),
          line('RSET'),
          line('MAIL FROM:<app@example.com>'),
        ],
      ],
    });
    expect(outcome.found).toEqual([]);
    expect(outcome.logs[0]?.replies.map((r) => r.code)).toEqual([220, 250, 250, 550, 250, 250]);
  });
});

// Found while attacking the front door beside the fuzz (its bodies stay small): smtp-server keeps
// streaming DATA past the size limit (it only flags it), so whatever holds the chunks holds all
// the client cares to send.
describe('SMTP server under an endless DATA', () => {
  it('does not keep what a client sends past the size limit (memory stays bounded, then 552)', async () => {
    const server = await startServer(
      {
        local: true,
        tls: false,
        implicitTls: false,
        relay: true,
        sourceAllowed: true,
        policy: 'reject',
        maxBytes: 4_000,
        recordFaults: [],
        queueFaults: [],
        statFaults: [],
        lookupFaults: [],
        directoryFaults: [],
        drainAfterMs: undefined,
        sessions: [],
      },
      keysFor({ policy: 'reject', relay: true, sourceAllowed: true } as World),
    );
    const socket = connect(server.port, '127.0.0.1');
    let received = '';
    const waitFor = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(received)) {
            socket.off('data', onData);
            resolve();
          }
        };
        const onData = (chunk: Buffer) => {
          received += chunk.toString('latin1');
          check();
        };
        socket.on('data', onData);
        socket.once('close', () => reject(new Error(`closed after ${JSON.stringify(received)}`)));
        check();
      });
    await waitFor(/^220 /m);
    socket.write(
      'EHLO client.example\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<ana@example.org>\r\nDATA\r\n',
    );
    await waitFor(/^354 /m);
    const base = process.memoryUsage().arrayBuffers;
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    }, 5);
    // 192 MB of lines, the same megabyte written again and again (the client holds one).
    const sentMb = 192;
    const megabyte = Buffer.from(`${'y'.repeat(76)}\r\n`.repeat(Math.floor(2 ** 20 / 78)), 'latin1');
    for (let i = 0; i < sentMb; i++) {
      if (!socket.write(megabyte)) await new Promise((r) => socket.once('drain', r));
    }
    socket.write('.\r\n');
    await waitFor(/^552 /m);
    clearInterval(sampler);
    socket.destroy();
    await server.settle();
    expect(received).toMatch(/^552 5\.3\.4 /m);
    // Dropped chunks wait for the garbage collector (V8 collects after some 64 MB of them), so the
    // peak is bounded, not tiny; holding them all would be the whole 192 MB, twice when joined.
    expect(peak / 2 ** 20).toBeLessThan((sentMb * 2) / 3);
  });
});
