import childProcess, { type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';
import { FunctionPool, type FunctionSpec } from '../../local/runtime/function-pool.ts';
import { type PollerSpec, SqsPoller } from '../../local/runtime/sqs-poller.ts';
import { createQueueWithArn, eventually, region, sqsClient, tempDir } from '../support/emulators.ts';

/** Throwaway handler modules, written to a temp dir: each decides its answer from its input or env. */
const HANDLERS: Readonly<Record<string, string>> = {
  // Reports every record whose body starts with "fail" as a batch item failure.
  'partial.mjs': `
    export const handler = async (event) => ({
      batchItemFailures: event.Records.filter((r) => r.body.startsWith('fail')).map((r) => ({
        itemIdentifier: r.messageId,
      })),
    });`,
  'throws.mjs': `
    export const handler = async () => {
      throw new Error('the handler failed');
    };`,
  // Answers whatever JSON the RESPONSE variable holds (nothing is inherited: env is the spec's).
  'answers.mjs': `
    export const handler = async () => JSON.parse(process.env.RESPONSE ?? 'null');`,
  // Sleeps for event.sleepMs and says which process ran it and when.
  'sleeps.mjs': `
    export const handler = async (event) => {
      const start = Date.now();
      await new Promise((resolve) => setTimeout(resolve, event.sleepMs ?? 0));
      return { pid: process.pid, start, end: Date.now() };
    };`,
  // Writes the event it was given to the file named by OUT (the poller keeps no results).
  'records.mjs': `
    import { writeFileSync } from 'node:fs';
    export const handler = async (event) => {
      writeFileSync(process.env.OUT, JSON.stringify(event));
      return null;
    };`,
  'broken.mjs': `
    throw new Error('cannot read BATON_MESSAGES_TABLE');
    export const handler = async () => null;`,
  'typed.ts': `
    interface Event { readonly Records: ReadonlyArray<{ readonly body: string }> }
    export const handler = async (event: Event): Promise<string[]> => event.Records.map((r) => r.body);`,
};

/**
 * Runs `run` with an 'error' listener on every function process forked meanwhile: the listener
 * function-pool.ts lacks (see the bug below), so a write to a dead process cannot crash the run.
 */
const withChildErrorsCaught = async <T>(run: () => Promise<T>): Promise<T> => {
  const original = childProcess.fork;
  const wrapped = (...args: unknown[]) => {
    const child = (original as (...a: unknown[]) => ChildProcess)(...args);
    // An EPIPE here is the symptom of the bug; the test asserts on the invocation result instead.
    child.on('error', () => {});
    return child;
  };
  childProcess.fork = wrapped as unknown as typeof childProcess.fork;
  syncBuiltinESMExports();
  try {
    return await run();
  } finally {
    childProcess.fork = original;
    syncBuiltinESMExports();
  }
};

/** Where the function processes' stdout and stderr go: nowhere, the tests assert on results. */
const discard = new Writable({ write: (_chunk, _encoding, callback) => callback() });

describe('local runtime: function processes and the SQS event source', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let fauxqs: LocalEmulator;
  let sqs: SQSClient;
  const pools: FunctionPool[] = [];
  const pollers: SqsPoller[] = [];
  let queues = 0;

  beforeAll(async () => {
    dir = await tempDir('runtime');
    await Promise.all(
      Object.entries(HANDLERS).map(([file, source]) => writeFile(join(dir.path, file), source)),
    );
    fauxqs = await startSqsSns({ port: 0, region });
    sqs = sqsClient(fauxqs.endpoint);
  });

  afterEach(async () => {
    await Promise.all(pollers.splice(0).map((p) => p.stop()));
    await Promise.all(pools.splice(0).map((p) => p.stop()));
  });

  afterAll(async () => {
    sqs.destroy();
    await fauxqs.stop();
    await dir.remove();
  });

  const pool = (handler: string, overrides: Partial<FunctionSpec> = {}): FunctionPool => {
    const created = new FunctionPool({
      name: `Fn${handler.replace(/\W/g, '')}`,
      entry: join(dir.path, handler),
      env: {},
      timeoutMs: 5_000,
      maxConcurrency: 1,
      log: discard,
      ...overrides,
    });
    pools.push(created);
    return created;
  };

  /** A fresh queue (and DLQ with a redrive policy when asked); names never repeat in a run. */
  const queue = async (attributes: {
    visibilityTimeout: number;
    maxReceiveCount?: number;
  }): Promise<{ url: string; arn: string; dlq?: { url: string; arn: string } }> => {
    const name = `runtime-${++queues}`;
    const create = (queueName: string, attrs: Record<string, string>) =>
      createQueueWithArn(sqs, queueName, attrs);
    const dlq = attributes.maxReceiveCount === undefined ? undefined : await create(`${name}-dlq`, {});
    const main = await create(name, {
      VisibilityTimeout: String(attributes.visibilityTimeout),
      ...(dlq
        ? {
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: dlq.arn,
              maxReceiveCount: attributes.maxReceiveCount,
            }),
          }
        : {}),
    });
    return { ...main, ...(dlq ? { dlq } : {}) };
  };

  const send = async (url: string, bodies: readonly string[]): Promise<void> => {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body })),
      }),
    );
  };

  const poller = (
    fn: FunctionPool,
    target: { url: string; arn: string },
    overrides: Partial<PollerSpec> = {},
  ): SqsPoller => {
    const created = new SqsPoller(sqs, fn, {
      queueUrl: target.url,
      queueArn: target.arn,
      batchSize: 10,
      maxBatchingWindowSeconds: 0,
      maxConcurrency: 1,
      reportBatchItemFailures: true,
      ...overrides,
    });
    pollers.push(created);
    return created;
  };

  /** Runs the poller until it has invoked the function `invocations` times, then stops it. */
  const runUntil = async (running: SqsPoller, invocations: number): Promise<void> => {
    running.start();
    await eventually(`${invocations} invocation(s)`, () =>
      running.stats.invocations >= invocations ? true : undefined,
    );
    await running.stop();
  };

  const receiveAll = async (url: string, waitSeconds: number): Promise<Message[]> => {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    return out.Messages ?? [];
  };

  const counts = async (url: string): Promise<{ visible: string; inFlight: string }> => {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Attributes?.ApproximateNumberOfMessages ?? '?',
      inFlight: Attributes?.ApproximateNumberOfMessagesNotVisible ?? '?',
    };
  };

  describe('SqsPoller', () => {
    it('gathers records for the batching window before it invokes, as Lambda does', async () => {
      // Prepare: records arrive one by one, well within a 2 s window.
      const target = await queue({ visibilityTimeout: 30 });
      const running = poller(pool('partial.mjs'), target, { maxBatchingWindowSeconds: 2 });
      running.start();

      // Act
      for (const body of ['ok-1', 'ok-2', 'ok-3']) {
        await send(target.url, [body]);
        await new Promise((r) => setTimeout(r, 200));
      }
      await eventually('one invocation', () => (running.stats.invocations >= 1 ? true : undefined));
      await running.stop();

      // Assess
      expect(running.stats).toMatchObject({ invocations: 1, records: 3 });
    });

    it('deletes the records the function succeeded with and keeps only those it reported as failed', async () => {
      // Prepare
      const target = await queue({ visibilityTimeout: 1 });
      await send(target.url, ['ok-1', 'fail-2', 'ok-3']);
      const running = poller(pool('partial.mjs'), target);

      // Act
      await runUntil(running, 1);

      // Assess
      expect(running.stats).toEqual({ invocations: 1, records: 3, failedRecords: 1, errors: 0 });
      const redelivered = await receiveAll(target.url, 2);
      expect(redelivered.map((m) => [m.Body, m.Attributes?.ApproximateReceiveCount])).toEqual([
        ['fail-2', '2'],
      ]);
    });

    it('keeps the whole batch when the function throws', async () => {
      // Prepare
      const target = await queue({ visibilityTimeout: 30 });
      await send(target.url, ['a', 'b']);
      const running = poller(pool('throws.mjs'), target);

      // Act
      await runUntil(running, 1);

      // Assess
      expect(running.stats).toEqual({ invocations: 1, records: 2, failedRecords: 2, errors: 0 });
      expect(await counts(target.url)).toEqual({ visible: '0', inFlight: '2' });
    });

    it.each([
      ['an unknown message id', { batchItemFailures: [{ itemIdentifier: 'not-a-message-of-this-batch' }] }],
      ['an empty item identifier', { batchItemFailures: [{ itemIdentifier: '' }] }],
      ['a failure entry that is not an object', { batchItemFailures: ['oops'] }],
      ['batchItemFailures that is not a list', { batchItemFailures: 'all of them' }],
      ['a response that is not an object', 'done'],
    ])('keeps the whole batch when the response names %s', async (_what, response) => {
      // Prepare
      const target = await queue({ visibilityTimeout: 30 });
      await send(target.url, ['a', 'b']);
      const running = poller(pool('answers.mjs', { env: { RESPONSE: JSON.stringify(response) } }), target);

      // Act
      await runUntil(running, 1);

      // Assess
      expect(running.stats.failedRecords).toBe(2);
      expect(await counts(target.url)).toEqual({ visible: '0', inFlight: '2' });
    });

    it.each([
      ['an empty failure list', { batchItemFailures: [] }],
      ['no batchItemFailures at all', {}],
      ['no response (null)', null],
    ])('deletes the whole batch when the response has %s', async (_what, response) => {
      // Prepare
      const target = await queue({ visibilityTimeout: 30 });
      await send(target.url, ['a', 'b']);
      const running = poller(pool('answers.mjs', { env: { RESPONSE: JSON.stringify(response) } }), target);

      // Act
      await runUntil(running, 1);

      // Assess
      expect(running.stats.failedRecords).toBe(0);
      expect(await counts(target.url)).toEqual({ visible: '0', inFlight: '0' });
    });

    it('moves a message that keeps failing to the DLQ after maxReceiveCount receives', async () => {
      // Prepare
      const target = await queue({ visibilityTimeout: 1, maxReceiveCount: 2 });
      const dlq = target.dlq;
      if (!dlq) throw new Error('no DLQ');
      await send(target.url, ['fail-forever']);
      const running = poller(pool('partial.mjs'), target);

      // Act
      running.start();
      const deadLettered = await eventually('the message in the DLQ', async () => {
        const received = await receiveAll(dlq.url, 0);
        return received.length > 0 ? received : undefined;
      });
      await running.stop();

      // Assess
      expect(deadLettered.map((m) => m.Body)).toEqual(['fail-forever']);
      expect(running.stats).toEqual({ invocations: 2, records: 2, failedRecords: 2, errors: 0 });
      expect(await counts(target.url)).toEqual({ visible: '0', inFlight: '0' });
    });

    it('hands the function records shaped like Lambda’s, naming the queue ARN as event source', async () => {
      // Prepare
      const target = await queue({ visibilityTimeout: 30 });
      const out = join(dir.path, 'event.json');
      await send(target.url, ['shape']);
      const running = poller(pool('records.mjs', { env: { OUT: out } }), target);

      // Act
      await runUntil(running, 1);

      // Assess
      const event = JSON.parse(await readFile(out, 'utf8')) as { Records: unknown[] };
      expect(event.Records).toEqual([
        {
          messageId: expect.stringMatching(/\S/),
          receiptHandle: expect.stringMatching(/\S/),
          body: 'shape',
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: expect.stringMatching(/^\d+$/),
            SenderId: expect.any(String),
            ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d+$/),
          },
          messageAttributes: {},
          md5OfBody: createHash('md5').update('shape').digest('hex'),
          eventSource: 'aws:sqs',
          eventSourceARN: target.arn,
          awsRegion: 'us-east-1',
        },
      ]);
    });
  });

  describe('FunctionPool', () => {
    it('runs a TypeScript handler module as Node runs it (type stripping)', async () => {
      // Prepare
      const fn = pool('typed.ts');
      await fn.start();

      // Act
      const result = await fn.invoke({ Records: [{ body: 'x' }, { body: 'y' }] });

      // Assess
      expect(result).toEqual({ ok: true, result: ['x', 'y'] });
    });

    it('ends a timed-out invocation with TimeoutError and kills its process', async () => {
      // Prepare
      const fn = pool('sleeps.mjs', { timeoutMs: 500 });
      const warm = await fn.invoke({ sleepMs: 0 });
      const pid = warm.ok ? (warm.result as { pid: number }).pid : -1;

      // Act
      const result = await fn.invoke({ sleepMs: 60_000 });

      // Assess
      expect(result).toEqual({
        ok: false,
        error: { name: 'TimeoutError', message: 'Task timed out after 0.5 seconds' },
      });
      await eventually('the timed-out process to exit', () => {
        try {
          process.kill(pid, 0);
          return undefined;
        } catch {
          return true;
        }
      });
    });

    // Regression: the pool used to hand the next invocation to the dying timed-out process (and an
    // IPC write to it could crash local mode with EPIPE). The wrapper keeps a regression contained.
    it('runs the invocation right after a timeout on a fresh process', async () => {
      // Prepare
      const fn = pool('sleeps.mjs', { timeoutMs: 500 });

      // Act
      const { warm, next } = await withChildErrorsCaught(async () => {
        const first = await fn.invoke({ sleepMs: 0 });
        await fn.invoke({ sleepMs: 60_000 });
        return { warm: first, next: await fn.invoke({ sleepMs: 0 }) };
      });

      // Assess
      expect(next).toEqual({ ok: true, result: expect.objectContaining({ start: expect.any(Number) }) });
      expect(next.ok && (next.result as { pid: number }).pid).not.toBe(
        warm.ok && (warm.result as { pid: number }).pid,
      );
    });

    it('runs a later invocation on a fresh process once the timed-out one is gone', async () => {
      // Prepare
      const fn = pool('sleeps.mjs', { timeoutMs: 500 });
      const warm = await fn.invoke({ sleepMs: 0 });
      const firstPid = warm.ok ? (warm.result as { pid: number }).pid : -1;
      await fn.invoke({ sleepMs: 60_000 });
      await eventually('the timed-out process to exit', () => {
        try {
          process.kill(firstPid, 0);
          return undefined;
        } catch {
          return true;
        }
      });

      // Act
      const next = await fn.invoke({ sleepMs: 0 });

      // Assess
      expect(next.ok).toBe(true);
      const nextPid = next.ok ? (next.result as { pid: number }).pid : -1;
      expect(nextPid).not.toBe(firstPid);
      expect(nextPid).toBeGreaterThan(0);
    });

    it('never runs more invocations at once than maxConcurrency, one process each', async () => {
      // Prepare
      const fn = pool('sleeps.mjs', { maxConcurrency: 2 });

      // Act
      const results = await Promise.all(Array.from({ length: 6 }, () => fn.invoke({ sleepMs: 300 })));

      // Assess
      const runs = results.map((r) => {
        if (!r.ok) throw new Error(`invocation failed: ${r.error.name}: ${r.error.message}`);
        return r.result as { pid: number; start: number; end: number };
      });
      const overlap = Math.max(
        ...runs.map(
          (run) => runs.filter((other) => other.start <= run.start && run.start < other.end).length,
        ),
      );
      expect(overlap).toBe(2);
      expect(new Set(runs.map((run) => run.pid)).size).toBe(2);
    });

    it('ends the running invocation with RuntimeExitError when the pool stops', async () => {
      // Prepare
      const fn = pool('sleeps.mjs', { maxConcurrency: 1 });
      await fn.start();
      const running = fn.invoke({ sleepMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));

      // Act
      await fn.stop();

      // Assess
      expect(await running).toEqual({
        ok: false,
        error: { name: 'RuntimeExitError', message: 'the function process exited (SIGTERM)' },
      });
    });

    // Regression: waiters woken while stop() ran used to spawn processes after it returned.
    it('answers invocations still waiting for a process when the pool stops with Stopped, running none', async () => {
      // Prepare
      const fn = pool('sleeps.mjs', { maxConcurrency: 1 });
      await fn.start();
      void fn.invoke({ sleepMs: 5_000 });
      const waiting = [fn.invoke({ sleepMs: 0 }), fn.invoke({ sleepMs: 0 })];
      await new Promise((resolve) => setTimeout(resolve, 100));

      // Act
      await fn.stop();

      // Assess
      const stopped = { ok: false, error: { name: 'Stopped', message: 'local mode is stopping' } };
      expect(await Promise.all(waiting)).toEqual([stopped, stopped]);
    });

    it('rejects start() with the init error, naming the function, when the handler throws at import', async () => {
      // Prepare
      const fn = pool('broken.mjs', { name: 'SenderFunction' });

      // Act
      const started = fn.start();

      // Assess
      await expect(started).rejects.toThrow(
        'SenderFunction failed to start: cannot read BATON_MESSAGES_TABLE',
      );
    });

    it('answers an invocation of a function that cannot start with InitError instead of hanging', async () => {
      // Prepare
      const fn = pool('broken.mjs', { name: 'SenderFunction' });

      // Act
      const result = await fn.invoke({ Records: [] });

      // Assess
      expect(result).toEqual({
        ok: false,
        error: {
          name: 'InitError',
          message: 'SenderFunction failed to start: cannot read BATON_MESSAGES_TABLE',
        },
      });
    });
  });
});
