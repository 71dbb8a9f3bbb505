/**
 * The fault soak (issue 6): local mode takes thousands of messages over HTTP while the SES
 * stand-in throttles and rejects, a proxy fails DynamoDB calls (some after they took effect) and
 * the sender processes are killed mid-batch. Then it checks, from the emulators' own state, that
 * nothing accepted was lost or sent twice. `npm run soak` runs the full size; `soak.test.ts` a
 * short one inside `npm test`.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { MessageRecord, RecipientStatus } from '../../lambdas/domain/message.ts';
import { EnvVar } from '../../lambdas/shared/names.ts';
import { type LocalBaton, startLocal } from '../../local/baton-local.ts';
import { type AwsProxy, startAwsProxy } from '../../local/emulators/aws-proxy.ts';
import { functionSetting, sourceQueuesDepth } from '../../local/inspect.ts';

export interface SoakOptions {
  /** Messages to accept. */
  readonly messages: number;
  /** Requests in flight at once. @default 16 */
  readonly concurrency?: number;
  /** Share of messages posted through the batch endpoint (in batches of `batchSize`). @default 0.5 */
  readonly batchShare?: number;
  /** @default 50 */
  readonly batchSize?: number;
  /** Fraction of SES SendEmail calls throttled. @default 0.3 */
  readonly sesThrottleRate?: number;
  /** Fraction of SES SendEmail calls rejected (MessageRejected). @default 0.01 */
  readonly sesRejectRate?: number;
  /**
   * Fraction of SES SendEmail calls that SES keeps while the answer is lost (InternalFailure or a
   * reset connection): Baton must wait for the events instead of sending again. @default 0.05
   */
  readonly sesAcceptThenFailRate?: number;
  /** Fraction answered the same way with nothing kept: Baton must send again after the window. @default 0.05 */
  readonly sesFailWithoutAcceptRate?: number;
  /** Pause before each SES event (as deployed, SES takes seconds). @default 3000 */
  readonly eventDelayMs?: number;
  /** Fraction of DynamoDB calls failed (a quarter of them after taking effect). @default 0.05 */
  readonly dynamoFaultRate?: number;
  /** How often the sender processes are killed while mail flows. */
  readonly kills: number;
  /**
   * The claim lease and lane visibility timeout, shortened from the deployed 120 s / 181 s so a
   * killed sender's messages come back within the run (the lease stays below the visibility
   * timeout, as deployed). @default deployed values
   */
  readonly leaseSeconds?: number;
  readonly visibilitySeconds?: number;
  /** Give up waiting for terminal states after this long. @default 15 min */
  readonly settleTimeoutMs?: number;
  /**
   * Unreadable jobs put straight on each lane queue (a job no api wrote): the senders must move
   * them to the dead-letter queue, under the same faults. @default 2
   */
  readonly poisonJobs?: number;
  readonly log?: (line: string) => void;
  /** @default 1 */
  readonly seed?: number;
}

export interface SoakReport {
  readonly messages: { readonly posted: number; readonly accepted: number; readonly refused: number };
  readonly recipients: number;
  readonly requests: { readonly http: number; readonly retried: number };
  readonly terminal: Readonly<Partial<Record<RecipientStatus, number>>>;
  readonly faults: {
    readonly sesThrottled: number;
    readonly sesRejected: number;
    readonly dynamoCalls: number;
    readonly dynamoFailed: number;
    readonly dynamoLostResponses: number;
    readonly senderKills: number;
    readonly processesKilled: number;
  };
  /** SendEmail answers the stand-in lost on purpose, and what became of their messages. */
  readonly ambiguous: {
    readonly injected: number;
    /** SES kept the message (acceptThenFail): resolved by its events, without a second send. */
    readonly kept: number;
    readonly keptResolvedWithoutResend: number;
    /** SES kept nothing (failWithoutAccept): sent again after the confirmation window. */
    readonly notKept: number;
    readonly notKeptSentAgain: number;
    /** Messages with a lost answer whose recipients show SES outcomes (delivered, bounced, complained). */
    readonly messages: number;
    readonly delivered: number;
    /** Of those messages, the ones SES refused (MessageRejected) on the send after the window. */
    readonly refusedOnResend: number;
  };
  /** The senders' confirmation window in this run (local mode's own), in seconds. */
  readonly confirmationWindowSeconds: number;
  readonly sesAccepted: number;
  readonly duplicates: number;
  readonly lost: number;
  readonly notTerminal: number;
  readonly dlq: {
    readonly lane: number;
    readonly poison: number;
    readonly other: number;
    readonly mismatched: number;
  };
  readonly suppressions: { readonly listed: number; readonly expected: number; readonly mismatched: number };
  readonly elapsedMs: number;
  /** Every failed check, in words; empty when the soak passed. */
  readonly problems: readonly string[];
}

const TERMINAL: ReadonlySet<RecipientStatus> = new Set([
  'delivered',
  'bounced',
  'complained',
  'suppressed',
  'failed',
]);
const SIM = 'simulator.amazonses.com';
const API_KEY = 'bt_soaktestkey01_abcdefghijklmnopqrstuvwxyz0123456789ABCD';

/** Deterministic randomness (mulberry32), so a failing soak can be run again the same way. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Message `i` of the run: mostly success@, some bounce@, complaint@ and ooto@; mixed lanes. */
function messageBody(i: number, random: () => number): Record<string, unknown> {
  const draw = random();
  const mailbox = draw < 0.06 ? 'bounce' : draw < 0.1 ? 'complaint' : draw < 0.14 ? 'ooto' : 'success';
  const to = [`${mailbox}+m${i}@${SIM}`];
  // One in ten has a second recipient, so states are checked per recipient, not per message.
  const cc = random() < 0.1 ? [`success+c${i}@${SIM}`] : [];
  const broadcast = random() < 0.4;
  return {
    from: 'Soak <soak@example.com>',
    to,
    cc,
    subject: `Soak message ${i}`,
    text: `Soak body ${i}\n${'lorem ipsum dolor sit amet '.repeat(40)}`,
    stream: broadcast ? 'broadcast' : 'transactional',
    ...(broadcast ? { listUnsubscribe: `https://example.com/unsub?m=${i}` } : {}),
    tags: { soak: 'yes' },
  };
}

interface Accepted {
  readonly id: string;
  readonly status: string;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const random = prng(options.seed ?? 1);
  const dir = mkdtempSync(join(tmpdir(), 'baton-soak-'));
  const dynamoFaultRate = options.dynamoFaultRate ?? 0.05;
  let dynamoProxy: AwsProxy | undefined;
  const baton = await startLocal({
    port: 0,
    stateDir: dir,
    apiKey: API_KEY,
    logLevel: 'WARN',
    faults: {
      throttleRate: options.sesThrottleRate ?? 0.3,
      rejectRate: options.sesRejectRate ?? 0.01,
      acceptThenFailRate: options.sesAcceptThenFailRate ?? 0.05,
      failWithoutAcceptRate: options.sesFailWithoutAcceptRate ?? 0.05,
      eventDelayMs: options.eventDelayMs ?? 3000,
      random: prng((options.seed ?? 1) + 1),
    },
    wrapEndpoint: async (service, endpoint) => {
      if (service !== 'dynamodb') return endpoint;
      dynamoProxy = await startAwsProxy({
        target: endpoint,
        service,
        faults: {
          failRate: (dynamoFaultRate * 3) / 4,
          lostResponseRate: dynamoFaultRate / 4,
          random: prng((options.seed ?? 1) + 2),
        },
      });
      return dynamoProxy.endpoint;
    },
    // A larger SES quota than the default 14/s: more sender instances, so kills hit several.
    context: { maxSendRate: '40' },
    functionEnvironment: {
      [EnvVar.maxSendRate]: '1000',
      // The soak's load is the mailbox simulator's, which the abuse guard leaves out deployed: a
      // new key sending thousands an hour would otherwise be throttled as a volume spike.
      [EnvVar.guardCountSimulator]: '0',
      ...(options.leaseSeconds ? { [EnvVar.claimLeaseSeconds]: String(options.leaseSeconds) } : {}),
    },
  }).catch(async (error: unknown) => {
    await dynamoProxy?.stop();
    throw error;
  });
  const sqs = new SQSClient({
    region: 'us-east-1',
    endpoint: baton.endpoints.sqs,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    useQueueUrlAsEndpoint: false,
  });
  const dynamo = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: baton.endpoints.dynamodb,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const doc = DynamoDBDocumentClient.from(dynamo);
  try {
    log(`local mode ready in ${baton.startupMs} ms (${dir})`);
    const lanes = laneQueues(baton);
    if (options.visibilitySeconds) {
      for (const q of lanes)
        await sqs.send(
          new SetQueueAttributesCommand({
            QueueUrl: q.url,
            Attributes: { VisibilityTimeout: String(options.visibilitySeconds) },
          }),
        );
    }

    const poison = new Set<string>();
    for (const q of lanes) {
      for (let i = 0; i < (options.poisonJobs ?? 2); i++) {
        const id = `msg_POISON${String(poison.size).padStart(16, '0')}`;
        poison.add(id);
        await sqs.send(
          new SendMessageCommand({ QueueUrl: q.url, MessageBody: JSON.stringify({ v: 1, id }) }),
        );
      }
    }

    // --- traffic, with the senders killed every so often ---------------------------------------
    const senders = [...baton.pools.values()].filter((p) => EnvVar.lane in p.spec.env);
    let senderKills = 0;
    let processesKilled = 0;
    let posting = true;
    const killer = (async () => {
      const every = Math.max(500, Math.round(estimatePostMs(options) / (options.kills + 1)));
      while (senderKills < options.kills) {
        await sleep(every);
        if (!posting && senderKills > 0) break;
        const killed = senders.reduce((n, p) => n + p.killAll(), 0);
        senderKills++;
        processesKilled += killed;
        log(`kill ${senderKills}: ${killed} sender processes`);
      }
    })();

    const http = { requests: 0, retried: 0 };
    const accepted = new Map<string, Accepted>();
    const bodies = Array.from({ length: options.messages }, (_, i) => messageBody(i, random));
    const batchSize = options.batchSize ?? 50;
    const singles = Math.round(options.messages * (1 - (options.batchShare ?? 0.5)));
    const units: Array<{ route: string; body: unknown; count: number }> = [];
    for (let i = 0; i < singles; i++) units.push({ route: '/v1/messages', body: bodies[i], count: 1 });
    for (let i = singles; i < bodies.length; i += batchSize) {
      const messages = bodies.slice(i, i + batchSize);
      units.push({ route: '/v1/messages/batch', body: { messages }, count: messages.length });
    }
    let next = 0;
    let refused = 0;
    let done = 0;
    const worker = async () => {
      while (next < units.length) {
        const unit = units[next++];
        if (!unit) break;
        const result = await post(baton, unit.route, unit.body, http);
        for (const r of result) {
          if (r.status === 'queued' || r.status === 'suppressed') accepted.set(r.id, r);
          else refused++;
        }
        done += unit.count;
        if (done % 1000 < unit.count) log(`posted ${done}/${options.messages}`);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 16 }, worker));
    posting = false;
    await killer;
    log(`posted: ${accepted.size} accepted, ${refused} refused, ${http.retried} retried requests`);

    // --- wait for every message to settle -----------------------------------------------------
    const deadline = Date.now() + (options.settleTimeoutMs ?? 15 * 60_000);
    let records = new Map<string, MessageRecord>();
    for (;;) {
      const depth = await sourceQueuesDepth(sqs, baton);
      records = await scanMessages(doc, baton);
      const open = [...accepted.keys()].filter((id) => !isSettled(records.get(id))).length;
      if (depth === 0 && open === 0) break;
      if (Date.now() > deadline) {
        log(`gave up waiting: ${depth} queued jobs, ${open} messages not terminal`);
        break;
      }
      log(`waiting: ${depth} jobs on queues, ${open} messages not terminal`);
      await sleep(3000);
    }
    await baton.ses.settled();
    records = await scanMessages(doc, baton);

    // --- checks ---------------------------------------------------------------------------------
    const problems: string[] = [];
    const terminal: Partial<Record<RecipientStatus, number>> = {};
    let lost = 0;
    let notTerminal = 0;
    let recipients = 0;
    for (const id of accepted.keys()) {
      const record = records.get(id);
      if (!record) {
        lost++;
        continue;
      }
      for (const r of record.recipients) {
        recipients++;
        terminal[r.status] = (terminal[r.status] ?? 0) + 1;
        if (!TERMINAL.has(r.status)) notTerminal++;
      }
    }
    if (lost) problems.push(`${lost} accepted messages have no record`);
    if (notTerminal) problems.push(`${notTerminal} recipients are not in a terminal state`);

    // Exactly once: one SES send and one outbox file per message that reached SES.
    const sends = new Map<string, number>();
    for (const s of baton.ses.sent()) {
      if (s.batonMessageId) sends.set(s.batonMessageId, (sends.get(s.batonMessageId) ?? 0) + 1);
    }
    let duplicates = 0;
    for (const n of sends.values()) duplicates += Math.max(0, n - 1);
    const outbox = readdirSync(baton.outboxDir);
    const dupFiles = outbox.filter((f) => f.includes('.dup-')).length;
    duplicates += dupFiles;
    if (duplicates) problems.push(`${duplicates} duplicate sends`);
    for (const id of sends.keys()) {
      if (!accepted.has(id)) problems.push(`SES sent ${id}, which was never accepted`);
    }
    for (const [id, record] of records) {
      const reached = record.recipients.some((r) =>
        ['delivered', 'bounced', 'complained'].includes(r.status),
      );
      if (reached && !sends.has(id)) problems.push(`message ${id} shows SES outcomes but SES never took it`);
      if (sends.has(id) && record.recipients.every((r) => r.status === 'failed' || r.status === 'suppressed'))
        if (record.phase !== 'rejected')
          problems.push(`message ${id} reached SES but is recorded ${record.phase}`);
    }

    // Dead letters: a lane DLQ holds exactly the poison jobs and the messages recorded failed
    // because Baton gave up on them.
    const dlq = await drainDeadLetters(sqs, baton);
    const gaveUp = new Set([
      ...poison,
      ...[...records.values()]
        .filter((r) =>
          r.recipients.some(
            (x) => x.status === 'failed' && /^Baton (gave up|cannot send)/.test(String(x.reason)),
          ),
        )
        .map((r) => r.id),
    ]);
    let mismatched = 0;
    for (const id of dlq.laneIds) if (!gaveUp.has(id)) mismatched++;
    for (const id of gaveUp) if (!dlq.laneIds.has(id)) mismatched++;
    if (mismatched) problems.push(`${mismatched} differences between the lane DLQs and the given-up records`);
    if (dlq.other) problems.push(`${dlq.other} messages on the feedback/erasure dead-letter queues`);
    for (const record of records.values()) {
      const failed = record.recipients.filter((r) => r.status === 'failed');
      if (failed.length && !gaveUp.has(record.id) && !failed.every((r) => /reject/i.test(String(r.reason))))
        problems.push(
          `message ${record.id} failed for another reason than an SES rejection: ${failed[0]?.reason}`,
        );
    }

    // Suppressions: exactly the addresses that bounced hard or complained.
    const listed = await scanSuppressions(doc, baton);
    const expected = new Set<string>();
    for (const record of records.values()) {
      for (const r of record.recipients) {
        if (r.status === 'complained' || (r.status === 'bounced' && r.soft !== true))
          expected.add(r.address.toLowerCase());
        if (r.status === 'suppressed' && !listed.has(r.address.toLowerCase()))
          problems.push(`a recipient of ${record.id} was suppressed by no listed suppression`);
      }
    }
    let suppressionMismatch = 0;
    for (const a of listed) if (!expected.has(a)) suppressionMismatch++;
    for (const a of expected) if (!listed.has(a)) suppressionMismatch++;
    for (const a of listed) {
      if (!/^(bounce|complaint)\+/.test(a)) problems.push(`suppressed an address that never bounced: ${a}`);
    }
    if (suppressionMismatch)
      problems.push(
        `${suppressionMismatch} differences between the suppression list and the hard bounces/complaints`,
      );

    // Lost answers: each message must have reached SES exactly once (duplicates above) and show
    // SES's outcomes, whether SES had kept it (its events settled it) or not (sent again).
    const lostAnswers = baton.ses
      .ambiguousAnswers()
      .filter((a) => a.batonMessageId && accepted.has(a.batonMessageId));
    const byMessage = new Map<string, { kept: boolean }>();
    for (const a of lostAnswers) {
      const id = a.batonMessageId ?? '';
      byMessage.set(id, { kept: (byMessage.get(id)?.kept ?? false) || a.kept });
    }
    let keptResolved = 0;
    let notKeptSentAgain = 0;
    let delivered = 0;
    let refusedOnResend = 0;
    for (const a of lostAnswers) {
      const n = sends.get(a.batonMessageId ?? '') ?? 0;
      if (a.kept && n === 1) keptResolved++;
      if (!a.kept && n >= 1) notKeptSentAgain++;
    }
    for (const [id, { kept }] of byMessage) {
      const record = records.get(id);
      const outcomes = record?.recipients.every((r) =>
        ['delivered', 'bounced', 'complained'].includes(r.status),
      );
      if (outcomes) delivered++;
      else if (
        !kept &&
        record?.phase !== 'sent' &&
        record?.recipients.every((r) => /reject/i.test(String(r.reason)))
      )
        refusedOnResend++;
      else
        problems.push(
          `message ${id} lost an SES answer and ended ${record?.recipients.map((r) => r.status).join('/') ?? 'without a record'}`,
        );
    }
    if (lostAnswers.some((a) => a.kept) && keptResolved < lostAnswers.filter((a) => a.kept).length)
      problems.push(
        `${lostAnswers.filter((a) => a.kept).length - keptResolved} messages SES kept were sent a second time`,
      );

    const ses = baton.ses.faultsInjected();
    const proxy = dynamoProxy?.stats();
    return {
      messages: { posted: options.messages, accepted: accepted.size, refused },
      recipients,
      requests: { http: http.requests, retried: http.retried },
      terminal,
      faults: {
        sesThrottled: ses.throttled,
        sesRejected: ses.rejected,
        dynamoCalls: Object.values(proxy?.calls ?? {}).reduce((a, b) => a + b, 0),
        dynamoFailed: proxy?.failed ?? 0,
        dynamoLostResponses: proxy?.lost ?? 0,
        senderKills,
        processesKilled,
      },
      ambiguous: {
        injected: ses.acceptedThenFailed + ses.failedWithoutAccept,
        kept: lostAnswers.filter((a) => a.kept).length,
        keptResolvedWithoutResend: keptResolved,
        notKept: lostAnswers.filter((a) => !a.kept).length,
        notKeptSentAgain,
        messages: byMessage.size,
        delivered,
        refusedOnResend,
      },
      confirmationWindowSeconds: Number(functionSetting(baton, EnvVar.confirmationWindowSeconds)),
      sesAccepted: baton.ses.sent().length,
      duplicates,
      lost,
      notTerminal,
      dlq: { lane: dlq.laneIds.size, poison: poison.size, other: dlq.other, mismatched },
      suppressions: { listed: listed.size, expected: expected.size, mismatched: suppressionMismatch },
      elapsedMs: Date.now() - started,
      problems: problems.slice(0, 50),
    };
  } finally {
    sqs.destroy();
    dynamo.destroy();
    await baton.stop();
    await dynamoProxy?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A rough duration of the posting phase, to spread the kills over it. */
function estimatePostMs(options: SoakOptions): number {
  return Math.max(2000, options.messages * 4);
}

function isSettled(record: MessageRecord | undefined): boolean {
  return record?.recipients.every((r) => TERMINAL.has(r.status)) === true;
}

/**
 * Posts with an Idempotency-Key and retries what a client should retry (5xx, 429, a dropped
 * connection) with the same key, as docs/sending.md ("Idempotency-Key") tells clients to. Returns each message's outcome.
 */
async function post(
  baton: LocalBaton,
  route: string,
  body: unknown,
  http: { requests: number; retried: number },
): Promise<Array<{ id: string; status: string }>> {
  const key = crypto.randomUUID();
  for (let attempt = 1; ; attempt++) {
    http.requests++;
    let res: Response | undefined;
    try {
      res = await fetch(`${baton.url}${route}`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${baton.apiKey}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify(body),
      });
    } catch {
      res = undefined;
    }
    const inProgress =
      res?.status === 409 &&
      ((await res.clone().json()) as { code?: unknown }).code === 'idempotency_in_progress';
    if (res && res.status < 500 && res.status !== 429 && !inProgress) {
      const json = (await res.json()) as Record<string, unknown>;
      if (res.status === 202) return [{ id: String(json.id), status: String(json.status) }];
      if (res.status === 207) {
        return (json.results as Array<Record<string, unknown>>).map((r) => ({
          id: String(r.id ?? ''),
          status: typeof r.id === 'string' ? String(r.status) : `problem ${String(r.status)}`,
        }));
      }
      throw new Error(`${route} answered ${res.status}: ${JSON.stringify(json).slice(0, 300)}`);
    }
    await res?.arrayBuffer().catch(() => undefined);
    if (attempt >= 30)
      throw new Error(`${route} still failing after ${attempt} attempts (${res?.status ?? 'network'})`);
    http.retried++;
    await sleep(Math.min(2000, 50 * 2 ** attempt));
  }
}

function laneQueues(baton: LocalBaton): Array<{ url: string; dlq?: string }> {
  const laneQueueIds = new Set(
    baton.plan.eventSources
      .filter((e) => {
        const fn = baton.pools.get(e.function);
        return fn !== undefined && EnvVar.lane in fn.spec.env;
      })
      .map((e) => e.queue),
  );
  return baton.plan.queues
    .filter((q) => laneQueueIds.has(q.logicalId))
    .map((q) => {
      const url = baton.queues.get(q.logicalId)?.url ?? '';
      const dlq = q.redrive ? baton.queues.get(q.redrive.deadLetterQueue)?.url : undefined;
      return dlq ? { url, dlq } : { url };
    });
}

async function drainDeadLetters(
  sqs: SQSClient,
  baton: LocalBaton,
): Promise<{ laneIds: Set<string>; other: number }> {
  const laneDlqs = new Set(laneQueues(baton).map((q) => q.dlq));
  const laneIds = new Set<string>();
  let other = 0;
  for (const q of baton.plan.queues) {
    const dlqId = q.redrive?.deadLetterQueue;
    const url = dlqId ? baton.queues.get(dlqId)?.url : undefined;
    if (!url) continue;
    for (;;) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (Messages.length === 0) break;
      for (const m of Messages) {
        if (laneDlqs.has(url)) laneIds.add(String((JSON.parse(m.Body ?? '{}') as { id?: unknown }).id));
        else other++;
      }
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
        }),
      );
    }
  }
  return { laneIds, other };
}

async function scanAll(doc: DynamoDBDocumentClient, table: string): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await doc.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...((page.Items ?? []) as Array<Record<string, unknown>>));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

async function scanMessages(
  doc: DynamoDBDocumentClient,
  baton: LocalBaton,
): Promise<Map<string, MessageRecord>> {
  const items = await scanAll(doc, functionSetting(baton, EnvVar.messagesTable));
  return new Map(items.map((i) => [String(i.id), i as unknown as MessageRecord]));
}

async function scanSuppressions(doc: DynamoDBDocumentClient, baton: LocalBaton): Promise<Set<string>> {
  const items = await scanAll(doc, functionSetting(baton, EnvVar.suppressionsTable));
  // The table also keeps soft-bounce counters, tenants' own entries and erasure tombstones, under
  // keys with a ':' (which no address has); counters also have no reason.
  return new Set(
    items
      .filter((i) => i.reason !== undefined)
      .map((i) => String(i.address))
      .filter((a) => !a.includes(':'))
      .map((a) => a.toLowerCase()),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The figures, one per line, for `npm run soak` and the test's output. */
export function formatReport(r: SoakReport): string {
  const rows: Array<[string, string]> = [
    [
      'messages posted / accepted / refused',
      `${r.messages.posted} / ${r.messages.accepted} / ${r.messages.refused}`,
    ],
    ['recipients', String(r.recipients)],
    ['HTTP requests (retried)', `${r.requests.http} (${r.requests.retried})`],
    [
      'terminal states',
      Object.entries(r.terminal)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    ['SES calls throttled / rejected', `${r.faults.sesThrottled} / ${r.faults.sesRejected}`],
    ['SES sends accepted', String(r.sesAccepted)],
    [
      'DynamoDB calls / failed / lost responses',
      `${r.faults.dynamoCalls} / ${r.faults.dynamoFailed} / ${r.faults.dynamoLostResponses}`,
    ],
    ['sender kills (processes)', `${r.faults.senderKills} (${r.faults.processesKilled})`],
    [
      'SES answers lost: injected / SES kept / resolved without a second send',
      `${r.ambiguous.injected} / ${r.ambiguous.kept} / ${r.ambiguous.keptResolvedWithoutResend}`,
    ],
    [
      'SES answers lost, nothing kept / sent again after the window',
      `${r.ambiguous.notKept} / ${r.ambiguous.notKeptSentAgain}`,
    ],
    [
      'messages with a lost answer / with SES outcomes / refused on resend',
      `${r.ambiguous.messages} / ${r.ambiguous.delivered} / ${r.ambiguous.refusedOnResend}`,
    ],
    ['confirmation window', `${r.confirmationWindowSeconds} s`],
    ['duplicates', String(r.duplicates)],
    ['lost', String(r.lost)],
    ['not terminal', String(r.notTerminal)],
    [
      'lane DLQs (poison jobs put) / other DLQs / mismatched',
      `${r.dlq.lane} (${r.dlq.poison}) / ${r.dlq.other} / ${r.dlq.mismatched}`,
    ],
    [
      'suppressions listed / expected / mismatched',
      `${r.suppressions.listed} / ${r.suppressions.expected} / ${r.suppressions.mismatched}`,
    ],
    ['elapsed', `${(r.elapsedMs / 1000).toFixed(1)} s`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
