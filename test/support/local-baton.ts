import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect } from 'vitest';
import type { MessageView } from '../../lambdas/domain/reporting/status.ts';
import { EnvVar } from '../../lambdas/shared/names.ts';
import {
  LOCAL_STATE_FILE,
  type LocalBaton,
  type LocalOptions,
  type LocalState,
  startLocal,
} from '../../local/baton-local.ts';
import { queueDepth as depthOf } from '../../local/inspect.ts';
import { sendBody } from './builders.ts';
import { eventually, sqsClient } from './emulators.ts';
import { ResponseAudit } from './openapi.ts';

export interface TestBaton extends LocalBaton {
  readonly dir: string;
  /** An SQS client on local mode's queues, closed with it. */
  readonly sqs: SQSClient;
  /** fetch against the local API with the development key (unless `auth: null`). */
  request(path: string, init?: RequestInit & { json?: unknown; auth?: string | null }): Promise<Response>;
  /** Every answer of the api checked against docs/openapi.json (issue 15); `close` fails on a violation. */
  readonly audit: ResponseAudit;
  /** Stops local mode; throws when an answer of the api was not as docs/openapi.json describes it. */
  close(): Promise<void>;
}

export const TEST_API_KEY = 'bt_e2etestkey01_abcdefghijklmnopqrstuvwxyz0123456789ABCD';

/** Local mode in this process, on free ports, with its state in a temporary folder. */
export async function startTestBaton(options: LocalOptions = {}): Promise<TestBaton> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-e2e-'));
  // Every answer of every e2e test is checked against the committed document (issue 15).
  const audit = new ResponseAudit(
    JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')),
  );
  const baton = await startLocal({
    port: 0,
    stateDir: dir,
    apiKey: TEST_API_KEY,
    eventDelayMs: 20,
    // Each test waits for its own events: the feedback queue's 5 s batching window would only
    // make every such wait longer.
    maxBatchingWindowSeconds: 0,
    // A key's suspension shows within a second instead of the deployed 30 s.
    functionEnvironment: { [EnvVar.keyCacheSeconds]: '1' },
    ...options,
    onResponse: (answer) => {
      audit.observe(answer);
      options.onResponse?.(answer);
    },
  });
  const sqs = sqsClient(baton.endpoints.sqs);
  return {
    ...baton,
    dir,
    sqs,
    audit,
    async request(path, init = {}) {
      const { json, auth, ...rest } = init;
      const headers = new Headers(rest.headers);
      const key = auth === undefined ? baton.apiKey : auth;
      if (key !== null) headers.set('authorization', `Bearer ${key}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(`${baton.url}${path}`, {
        ...rest,
        headers,
        ...(json !== undefined ? { body: JSON.stringify(json), method: rest.method ?? 'POST' } : {}),
      });
    },
    async close() {
      sqs.destroy();
      await baton.stop();
      rmSync(dir, { recursive: true, force: true });
      audit.assertClean();
    },
  };
}

/**
 * Starts local mode (`startTestBaton`) before the file's tests, hands it to `ready` to keep and to
 * build what the tests use, and closes it after them.
 */
export function withTestBaton(
  ready: (baton: TestBaton) => void | Promise<void>,
  options: LocalOptions = {},
): void {
  let baton: TestBaton | undefined;
  beforeAll(async () => {
    baton = await startTestBaton(options);
    await ready(baton);
  });
  afterAll(async () => {
    await baton?.close();
  });
}

/** `eventually` with the pace of local mode: a request every 100 ms, for up to 15 s by default. */
export function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  return eventually(what, check, timeoutMs, intervalMs);
}

/** What local mode wrote to its state file for tools: endpoints, and the api function's environment. */
export function localState(baton: TestBaton): LocalState {
  return JSON.parse(readFileSync(join(baton.dir, LOCAL_STATE_FILE), 'utf8')) as LocalState;
}

/** A setting of the api function's environment (a table name, a queue URL), from the state file. */
export function apiSetting(baton: TestBaton, name: string): string {
  const value = localState(baton).environment[name];
  if (value === undefined) throw new Error(`${LOCAL_STATE_FILE} names no ${name}`);
  return value;
}

// --- messages over HTTP ---------------------------------------------------------------------------

/** A valid POST /v1/messages body (the builders' `sendBody`) to `to`: what most e2e tests send. */
export const receipt = (to: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  sendBody({ to: [to], ...extra });

/** GET /v1/messages/{id} with the development key; fails unless it answers 200. */
export async function messageView(baton: TestBaton, id: string): Promise<MessageView> {
  const res = await baton.request(`/v1/messages/${id}`);
  if (res.status !== 200) throw new Error(`GET /v1/messages/${id} answered ${res.status}`);
  return (await res.json()) as MessageView;
}

/** Polls GET /v1/messages/{id} until the message shows `status`; returns that view. */
export function messageReaches(
  baton: TestBaton,
  id: string,
  status: string,
  timeoutMs?: number,
): Promise<MessageView> {
  return waitFor(
    `message ${id} to be ${status}`,
    async () => {
      const view = await messageView(baton, id);
      return view.status === status ? view : undefined;
    },
    timeoutMs,
  );
}

// --- what reached SES -----------------------------------------------------------------------------

/** SES sends the stand-in accepted for one Baton message. */
export const sesSendsOf = (baton: TestBaton, id: string) =>
  baton.ses.sent().filter((s) => s.batonMessageId === id);

/** Outbox files of one message, duplicates (`<id>.dup-<ses id>.eml`) included. */
export const outboxFilesOf = (baton: TestBaton, id: string): string[] =>
  readdirSync(baton.outboxDir).filter((f) => f.startsWith(`${id}.`));

/**
 * Fails unless SES took the message exactly once: one SendEmail, one outbox file and no duplicate,
 * counted once the lanes are empty (so a second job for it would have been sent by then).
 */
export async function expectSentOnce(baton: TestBaton, id: string): Promise<void> {
  await lanesDrained(baton);
  await baton.ses.settled();
  expect(sesSendsOf(baton, id)).toHaveLength(1);
  expect(outboxFilesOf(baton, id)).toEqual([`${id}.eml`]);
}

// --- queues ---------------------------------------------------------------------------------------

/** Messages on a queue: visible, in flight and delayed. */
export const queueDepth = (baton: TestBaton, url: string): Promise<number> => depthOf(baton.sqs, url);

/** Waits until the queue is empty: visible, in flight and delayed. */
export const queueDrained = (baton: TestBaton, url: string, what: string): Promise<true> =>
  waitFor(`the ${what} to be empty`, async () => ((await queueDepth(baton, url)) === 0 ? true : undefined));

/**
 * Waits until both lane queues the api enqueues on are empty. A job leaves its queue only once the
 * sender is done with it, so whatever the api queued before has by then reached SES (or failed):
 * checking `baton.ses.sent()` afterwards shows whether anything was sent, where checking at once
 * would pass before a wrongly queued job had had time to get there.
 */
export async function lanesDrained(baton: TestBaton): Promise<void> {
  await queueDrained(baton, apiSetting(baton, EnvVar.transactionalQueueUrl), 'transactional lane queue');
  await queueDrained(baton, apiSetting(baton, EnvVar.broadcastQueueUrl), 'broadcast lane queue');
}
