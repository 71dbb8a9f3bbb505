/**
 * The handler probes: each function's real bundle (as the stack builds it) in a process of its own,
 * with its environment from the synthesized template, against the integration emulators (dynalite,
 * fauxqs, the SES stand-in) provisioned from that template, behind counting proxies. One pass
 * through the pipeline with real data:
 *
 *   api      cold: 1 POST /v1/messages; single: SINGLE of them; batch: BATCHES × POST /v1/messages/batch of 100
 *   sender   the jobs the api queued, received as the event source would hand them over:
 *            cold: a batch of 1; single: SINGLE batches of 1; batch: SENDER_BATCHES batches of 10
 *   feedback the SES events those sends produced (Send and Delivery, as the configuration set
 *            publishes them), raw as the SQS subscription delivers them: cold: 1; single: SINGLE of
 *            each kind; batch: FEEDBACK_BATCHES batches of 10 of each kind
 *   erasure  init only (a step is a table scan, not a per-message cost)
 *
 * BENCH_PROBE_LOG_DIR=<folder> keeps each function's log output there (<fn>.log), to read it;
 * BENCH_PROBE_CPU_PROF=<folder> writes a CPU profile of each probe process there (node --cpu-prof).
 *
 * Every 10 KB message has one recipient. The senders run unpaced here (their pacing is a wait, which
 * the cost model adds) and sign with DKIM (what local mode does; deployed, SES signs instead, so
 * this errs on the heavy side).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { DynamoApiKeyStore } from '../../lambdas/adapters/api-key-store.ts';
import { generateApiKey, hashToken } from '../../lambdas/domain/keys/api-key.ts';
import { EnvVar, Route } from '../../lambdas/shared/names.ts';
import { sqsRecordOf } from '../../local/runtime/sqs-poller.ts';
import { startSesStandin } from '../../local/ses-standin/index.ts';
import { sqsRecord } from '../../test/support/builders.ts';
import { region, startProvisionedStack, tempDir } from '../../test/support/emulators.ts';
import { httpEvent } from '../../test/support/http-events.ts';
import { startWireProxy, type WireProxy, wireDelta, wireSum } from '../probe/wire.ts';
import { median, REPO_ROOT, TEN_KB_MESSAGE } from '../support.ts';
import { FUNCTIONS } from './bundles.ts';
import type {
  BenchContext,
  FunctionName,
  InvocationFigures,
  PayloadSizes,
  ProbeFigures,
  ScenarioFigures,
  WireUsage,
} from './types.ts';

const SINGLE = Number(process.env.BENCH_PROBE_SINGLE ?? 10);
const BATCHES = Number(process.env.BENCH_PROBE_API_BATCHES ?? 3);
const SENDER_BATCHES = Number(process.env.BENCH_PROBE_SENDER_BATCHES ?? 10);
const FEEDBACK_BATCHES = Number(process.env.BENCH_PROBE_FEEDBACK_BATCHES ?? 5);
export const API_BATCH = 100;
export const QUEUE_BATCH = 10;

interface Reply {
  readonly type: 'ready' | 'result' | 'error';
  readonly id?: number;
  readonly error?: string;
  readonly initMs?: number;
  readonly rssMb?: number;
  readonly heapUsedMb?: number;
  readonly result?: unknown;
  readonly cpuUs?: number;
  readonly wallMs?: number;
  readonly logBytes?: number;
  readonly logLines?: number;
  readonly emfBytes?: number;
  readonly metrics?: string[];
  readonly maxRssMb?: number;
  readonly peakHeapMb?: number;
}

interface Invocation {
  readonly figures: InvocationFigures;
  readonly reply: Reply;
}

interface Instance {
  readonly ready: Reply;
  invoke(event: unknown): Promise<Invocation>;
  stop(): Promise<void>;
}

async function startInstance(
  bundle: string,
  env: Record<string, string>,
  usage: () => WireUsage,
): Promise<Instance> {
  // BENCH_PROBE_CPU_PROF=<folder>: each probe process writes a V8 CPU profile there (node --cpu-prof).
  const profile = process.env.BENCH_PROBE_CPU_PROF;
  const flags = profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [];
  const child: ChildProcess = spawn(
    process.execPath,
    [...flags, join(REPO_ROOT, 'bench/probe/handler-child.mjs'), bundle],
    {
      env,
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  const waiters = new Map<number | 'ready', (r: Reply) => void>();
  const exited = new Promise<never>((_, reject) => {
    child.on('exit', (code) => reject(new Error(`probe process for ${bundle} exited ${code}: ${stderr}`)));
  });
  exited.catch(() => {});
  child.on('message', (r: Reply) => {
    const key = r.type === 'ready' || (r.type === 'error' && r.id === undefined) ? 'ready' : (r.id ?? -1);
    waiters.get(key)?.(r);
    waiters.delete(key);
  });
  const wait = (key: number | 'ready', what: string): Promise<Reply> =>
    Promise.race([
      new Promise<Reply>((resolve) => waiters.set(key, resolve)),
      exited,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`probe ${what} timed out: ${stderr}`)), 120_000).unref(),
      ),
    ]).then((r) => {
      if (r.type === 'error') throw new Error(`probe ${what} failed: ${r.error}`);
      return r;
    });
  const ready = await wait('ready', `init of ${bundle}`);
  let next = 0;
  return {
    ready,
    async invoke(event) {
      const id = ++next;
      const before = usage();
      const replied = wait(id, `invocation ${id} of ${bundle}`);
      child.send({ type: 'invoke', id, event });
      const reply = await replied;
      const wire = wireDelta(usage(), before);
      return {
        reply,
        figures: {
          cpuUs: reply.cpuUs ?? 0,
          wallMs: reply.wallMs ?? 0,
          logBytes: reply.logBytes ?? 0,
          logLines: reply.logLines ?? 0,
          emfBytes: reply.emfBytes ?? 0,
          wire,
        },
      };
    },
    async stop() {
      child.send({ type: 'exit' });
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
    },
  };
}

function scenario(name: string, units: number, invocations: InvocationFigures[]): ScenarioFigures {
  return { name, unitsPerInvocation: units, invocations };
}

/** What a probe measured: its cold invocation, its scenarios, and the reply that peaked (none: init only). */
interface Exercised {
  readonly cold: InvocationFigures;
  readonly scenarios: Record<string, ScenarioFigures>;
  readonly peak?: Reply;
}

/**
 * A cold invocation (the first `single`), then SINGLE more of `single` and `batches` of `batch`
 * (`unitsPerBatch` each), one after another; the last batch's reply is the peak (the cold one's if
 * there is none).
 */
async function coldSinglesBatches(
  single: () => Promise<Invocation>,
  batch: () => Promise<Invocation>,
  batches: number,
  unitsPerBatch: number,
): Promise<Exercised> {
  const cold = await single();
  const singles: InvocationFigures[] = [];
  for (let i = 0; i < SINGLE; i++) singles.push((await single()).figures);
  const batched: InvocationFigures[] = [];
  let last = cold;
  for (let i = 0; i < batches; i++) {
    last = await batch();
    batched.push(last.figures);
  }
  return {
    cold: cold.figures,
    scenarios: {
      single: scenario('single', 1, singles),
      batch: scenario('batch', unitsPerBatch, batched),
    },
    peak: last.reply,
  };
}

/** What an SQS-triggered function reported failed; throws when it reported any. */
function noFailures(r: Invocation, what: (failed: number) => string): Invocation {
  const failures = (r.reply.result as { batchItemFailures?: unknown[] } | undefined)?.batchItemFailures ?? [];
  if (failures.length > 0) throw new Error(what(failures.length));
  return r;
}

/** A function's figures: its init from `ready`, its peak from the run's (from init's when it has none). */
function probeFigures(
  fn: FunctionName,
  memoryMb: Readonly<Record<FunctionName, number>>,
  ready: Reply,
  peakScenario: string,
  run: Exercised,
): ProbeFigures {
  return {
    fn,
    configuredMemoryMb: memoryMb[fn],
    initMs: ready.initMs ?? 0,
    rssAfterInitMb: ready.rssMb ?? 0,
    peakRssMb: (run.peak ? run.peak.maxRssMb : ready.rssMb) ?? 0,
    peakHeapUsedMb: (run.peak ? run.peak.peakHeapMb : ready.heapUsedMb) ?? 0,
    peakScenario,
    metrics: run.peak?.metrics ?? [],
    cold: run.cold,
    scenarios: run.scenarios,
  };
}

/** Medians of a scenario's invocations, and its summed wire usage divided per invocation. */
export function perInvocation(s: ScenarioFigures): {
  cpuMs: number;
  wallMs: number;
  logBytes: number;
  emfBytes: number;
  wire: WireUsage;
} {
  const n = s.invocations.length;
  const sum = wireSum(s.invocations.map((i) => i.wire));
  const div = (x: number) => x / n;
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(sum.calls)) calls[k] = div(v);
  const dynamoUnits: Record<string, { wru: number; rru: number }> = {};
  for (const [k, v] of Object.entries(sum.dynamoUnits)) dynamoUnits[k] = { wru: div(v.wru), rru: div(v.rru) };
  return {
    cpuMs: median(s.invocations.map((i) => i.cpuUs)) / 1000,
    wallMs: median(s.invocations.map((i) => i.wallMs)),
    logBytes: median(s.invocations.map((i) => i.logBytes)),
    emfBytes: median(s.invocations.map((i) => i.emfBytes)),
    wire: {
      calls,
      dynamoWru: div(sum.dynamoWru),
      dynamoRru: div(sum.dynamoRru),
      dynamoUnits,
      sqsBilled: div(sum.sqsBilled),
      sesCalls: div(sum.sesCalls),
      snsPublishes: div(sum.snsPublishes),
      s3Calls: div(sum.s3Calls),
    },
  };
}

export interface ProbeRun extends PayloadSizes {
  readonly probes: Record<FunctionName, ProbeFigures>;
  readonly tableNames: Record<string, string>;
}

const SILENT = { info: () => {}, warn: () => {}, error: () => {} };

export async function runProbes(
  ctx: BenchContext,
  bundles: Readonly<Record<FunctionName, string>>,
  memoryMb: Readonly<Record<FunctionName, number>>,
): Promise<ProbeRun> {
  ctx.progress('memory: provisioning the emulators from the template');
  const stack = await startProvisionedStack();
  const outbox = await tempDir('bench-outbox');
  const proxies: WireProxy[] = [];
  const stops: Array<() => Promise<void>> = [];
  try {
    const dynamo = await startWireProxy(stack.dynamo.endpoint, 'DynamoDB', [
      { table: stack.tables.messages, attribute: 'sesMessageId', key: 'id' },
    ]);
    const fauxqs = await startWireProxy(stack.sqsSns.endpoint, 'fauxqs');
    proxies.push(dynamo, fauxqs);

    const byEntry = (fn: FunctionName, lane?: string) => {
      const plan = stack.plan.functions.find(
        (f) =>
          f.entry === FUNCTIONS[fn] &&
          (lane === undefined || stack.environments.get(f.logicalId)?.[EnvVar.lane] === lane),
      );
      if (!plan) throw new Error(`no ${fn} function in the template`);
      return stack.environments.get(plan.logicalId) ?? {};
    };
    const senderEnv = byEntry('sender', 'transactional');
    const configurationSet = senderEnv[EnvVar.configurationSet] ?? '';
    const events: string[] = [];
    const ses = await startSesStandin({
      outboxDir: outbox.path,
      region,
      configurationSets: [configurationSet],
      eventDestinations: stack.plan.eventDestinations.map((d) => ({
        configurationSet,
        topicArn: `arn:aws:sns:${region}:000000000000:bench-feedback`,
        eventTypes: d.eventTypes,
      })),
      publish: async (_topic, message) => {
        events.push(message);
      },
      eventDelayMs: 0,
      logger: SILENT,
    });
    stops.push(() => ses.stop());
    const sesProxy = await startWireProxy(ses.endpoint, 'SESv2');
    proxies.push(sesProxy);
    const usage = () => wireSum(proxies.map((p) => p.usage()));

    const secret = 'bench-erasure-secret-0123456789abcdefghijklmnopqrstuvwxyz';
    const envFor = (fn: FunctionName, base: Record<string, string>, extra: Record<string, string> = {}) => ({
      PATH: process.env.PATH ?? '',
      ...base,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_ACCESS_KEY_ID: 'bench',
      AWS_SECRET_ACCESS_KEY: 'bench',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
      AWS_ENDPOINT_URL_S3: fauxqs.endpoint,
      AWS_ENDPOINT_URL_SESV2: sesProxy.endpoint,
      AWS_LAMBDA_FUNCTION_NAME: `baton-${fn}`,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb[fn]),
      // The stack sets LoggingFormat JSON and no level: Lambda then passes INFO, which Powertools reads.
      AWS_LAMBDA_LOG_FORMAT: 'JSON',
      AWS_LAMBDA_LOG_LEVEL: 'INFO',
      [EnvVar.s3ForcePathStyle]: 'true',
      [EnvVar.erasureSecret]: secret,
      ...(process.env.BENCH_PROBE_LOG_DIR
        ? { BENCH_PROBE_LOG_FILE: join(process.env.BENCH_PROBE_LOG_DIR, `${fn}.log`) }
        : {}),
      ...extra,
    });

    // --- api ----------------------------------------------------------------------------------
    const { keyId, token } = generateApiKey();
    await new DynamoApiKeyStore(stack.clients.doc, stack.tables.apiKeys).put({
      keyId,
      secretHash: hashToken(token),
      tenant: 'bench',
      scopes: ['send', 'read', 'suppressions'],
      allowedDomains: ['example.com'],
      allowedCidrs: [],
      senderPolicy: 'reject',
      status: 'active',
      createdAt: new Date().toISOString(),
    });
    ctx.progress(`memory: api, ${SINGLE + 1} single requests and ${BATCHES} batch requests of ${API_BATCH}`);
    const single = httpEvent(Route.sendMessage, { token, body: TEN_KB_MESSAGE });
    const batchBody = { messages: Array.from({ length: API_BATCH }, () => TEN_KB_MESSAGE) };
    const batch = httpEvent(Route.sendBatch, { token, body: batchBody });
    const api = await startInstance(bundles.api, envFor('api', byEntry('api')), usage);
    const expect = (status: number) => (r: Invocation) => {
      const got = (r.reply.result as { statusCode?: number; body?: string } | undefined) ?? {};
      if (got.statusCode !== status) throw new Error(`api answered ${got.statusCode}: ${got.body ?? ''}`);
      return r;
    };
    const apiRun = await coldSinglesBatches(
      async () => expect(202)(await api.invoke(single)),
      async () => expect(207)(await api.invoke(batch)),
      BATCHES,
      API_BATCH,
    );
    await api.stop();
    const apiProbe = probeFigures(
      'api',
      memoryMb,
      api.ready,
      `POST /v1/messages/batch, ${API_BATCH} × 10 KB`,
      apiRun,
    );

    // --- sender -------------------------------------------------------------------------------
    const wanted = 1 + SINGLE + SENDER_BATCHES * QUEUE_BATCH;
    const queue = stack.queues.transactional;
    const received: Message[] = [];
    for (let empty = 0; received.length < wanted && empty < 20; ) {
      const out = await stack.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queue.url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      if ((out.Messages ?? []).length === 0) empty++;
      received.push(...(out.Messages ?? []));
    }
    if (received.length < wanted)
      throw new Error(`the api queued ${received.length} jobs, the probe needs ${wanted}`);
    const records: SQSRecord[] = received.map((m) => sqsRecordOf(m, queue.arn));
    const jobBytes = median(records.map((r) => Buffer.byteLength(r.body)));
    ctx.progress(`memory: sender, ${SINGLE + 1} batches of 1 and ${SENDER_BATCHES} of ${QUEUE_BATCH}`);
    const sender = await startInstance(
      bundles.sender,
      envFor('sender', senderEnv, {
        // Unpaced: the pacer's wait is modelled in the cost section, not slept here. No DKIM key:
        // deployed, SES signs and the bundle carries no signer (the cpu section times signing).
        [EnvVar.maxSendRate]: '100000',
      }),
      usage,
    );
    const sendBatch = async (batchRecords: SQSRecord[]) =>
      noFailures(
        await sender.invoke({ Records: batchRecords }),
        (failed) => `the sender failed ${failed} of ${batchRecords.length} records`,
      );
    let at = 0;
    const take = (n: number) => {
      const out = records.slice(at, at + n);
      at += n;
      return out;
    };
    const senderRun = await coldSinglesBatches(
      () => sendBatch(take(1)),
      () => sendBatch(take(QUEUE_BATCH)),
      SENDER_BATCHES,
      QUEUE_BATCH,
    );
    await sender.stop();
    const senderProbe = probeFigures(
      'sender',
      memoryMb,
      sender.ready,
      `SQS batch of ${QUEUE_BATCH} jobs, 10 KB messages, MIME (SES signs deployed)`,
      senderRun,
    );

    // --- feedback -----------------------------------------------------------------------------
    const sent = at;
    const kinds = new Map<string, string[]>();
    const deadline = Date.now() + 15_000;
    const expected = sent * 2;
    while (events.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const body of events) {
      const type = String((JSON.parse(body) as { eventType?: string }).eventType ?? 'unknown').toLowerCase();
      kinds.set(type, [...(kinds.get(type) ?? []), body]);
    }
    const eventBytes: Record<string, number> = {};
    for (const [kind, bodies] of kinds) eventBytes[kind] = median(bodies.map((b) => Buffer.byteLength(b)));
    ctx.progress(
      `memory: feedback, SES events ${[...kinds].map(([k, v]) => `${k} ${v.length}`).join(', ')}; ${SINGLE} single and ${FEEDBACK_BATCHES} batches of ${QUEUE_BATCH} per kind`,
    );
    const feedback = await startInstance(bundles.feedback, envFor('feedback', byEntry('feedback')), usage);
    let eventNo = 0;
    const feed = async (bodies: string[]) => {
      const r = await feedback.invoke({
        Records: bodies.map((b) => ({
          ...sqsRecord(b, { messageId: `bench-${++eventNo}` }),
          eventSourceARN: queue.arn,
        })),
      });
      return noFailures(r, (failed) => `feedback failed ${failed} of ${bodies.length} events`);
    };
    const feedbackScenarios: Record<string, ScenarioFigures> = {};
    const deliveries = kinds.get('delivery') ?? [];
    if (deliveries.length === 0) throw new Error('the SES stand-in published no Delivery events');
    const feedbackCold = await feed(deliveries.slice(0, 1));
    let lastFeed = feedbackCold;
    for (const [kind, bodies] of kinds) {
      let next = kind === 'delivery' ? 1 : 0;
      const singles: InvocationFigures[] = [];
      for (let i = 0; i < SINGLE && next < bodies.length; i++)
        singles.push((await feed(bodies.slice(next, ++next))).figures);
      const batches: InvocationFigures[] = [];
      for (let i = 0; i < FEEDBACK_BATCHES && next + QUEUE_BATCH <= bodies.length; i++) {
        lastFeed = await feed(bodies.slice(next, next + QUEUE_BATCH));
        next += QUEUE_BATCH;
        batches.push(lastFeed.figures);
      }
      feedbackScenarios[`single ${kind}`] = scenario(`single ${kind}`, 1, singles);
      feedbackScenarios[`batch ${kind}`] = scenario(`batch ${kind}`, QUEUE_BATCH, batches);
    }
    await feedback.stop();
    const feedbackProbe = probeFigures(
      'feedback',
      memoryMb,
      feedback.ready,
      `SQS batch of ${QUEUE_BATCH} SES events`,
      {
        cold: feedbackCold.figures,
        scenarios: feedbackScenarios,
        peak: lastFeed.reply,
      },
    );

    // --- erasure (init only) ------------------------------------------------------------------
    const erasure = await startInstance(bundles.erasure, envFor('erasure', byEntry('erasure')), usage);
    await erasure.stop();
    const noCalls: InvocationFigures = {
      cpuUs: 0,
      wallMs: 0,
      logBytes: 0,
      logLines: 0,
      emfBytes: 0,
      wire: wireSum([]),
    };
    const erasureProbe = probeFigures('erasure', memoryMb, erasure.ready, 'init only', {
      cold: noCalls,
      scenarios: {},
    });

    return {
      probes: { api: apiProbe, sender: senderProbe, feedback: feedbackProbe, erasure: erasureProbe },
      tableNames: {
        [stack.tables.apiKeys]: 'ApiKeys',
        [stack.tables.messages]: 'Messages',
        [stack.tables.suppressions]: 'Suppressions',
        [stack.tables.stats]: 'Stats',
        [stack.tables.idempotency]: 'Idempotency',
      },
      jobBytes,
      eventBytes,
      batchRequestBytes: Buffer.byteLength(JSON.stringify(batchBody)),
      singleRequestBytes: Buffer.byteLength(JSON.stringify(TEN_KB_MESSAGE)),
    };
  } finally {
    for (const p of proxies) await p.stop();
    for (const stop of stops) await stop();
    await stack.stop();
    await outbox.remove();
  }
}
