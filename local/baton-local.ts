import {
  closeSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoApiKeyStore } from '../lambdas/adapters/api-key-store.ts';
import { createDocumentClient } from '../lambdas/adapters/clients.ts';
import { DynamoMessageStore } from '../lambdas/adapters/message-store.ts';
import { EnvVar } from '../lambdas/shared/names.ts';
import { createApp, STACK_ID } from '../lib/app.ts';
import { REPO_ROOT } from '../lib/paths.ts';
import { CONSOLE_PATH, createConsole } from './console/server.ts';
import {
  DEVELOPMENT_TENANT,
  type DevelopmentDkim,
  developmentApiKey,
  developmentDkim,
  developmentErasureSecret,
  developmentKeyItem,
  dkimRecord,
} from './dev-keys.ts';
import { startDynamo } from './emulators/dynamodb.ts';
import { LocalPortEnvVar } from './emulators/errors.ts';
import { closeServer, listenOnLoopback } from './emulators/listen.ts';
import { startSqsSns } from './emulators/sqs-sns.ts';
import { localEventPath } from './event-path.ts';
import {
  type CfnTemplate,
  LOCAL_REGION,
  type LocalPlan,
  planFromTemplate,
  resolveEnvironment,
} from './plan.ts';
import { provision } from './provision.ts';
import { FunctionPool } from './runtime/function-pool.ts';
import { type AccessLogEntry, createGateway, type ObservedResponse } from './runtime/http-gateway.ts';
import { SqsPoller } from './runtime/sqs-poller.ts';
import {
  type FaultPlan,
  type SesStandin,
  type StandinLogger,
  startSesStandin,
  streamLogger,
} from './ses-standin/index.ts';
import { type DevelopmentCertificate, developmentCertificate, startLocalSmtp } from './smtp.ts';
import { LOCAL_STATE_FILE, type LocalState } from './state.ts';

const REGION = LOCAL_REGION;
const API_CONCURRENCY = 4;

export interface LocalOptions {
  /** HTTP API port on 127.0.0.1. @default 3000 (0 picks a free port) */
  readonly port?: number;
  /** @default generated and kept in `<stateDir>/dev-api-key` */
  readonly apiKey?: string;
  /** Domains the development key may send from. @default ['example.com'] */
  readonly domains?: readonly string[];
  /**
   * The SES identities of this local deployment, as `-c domains=` would give a deployed stack
   * (BATON_SENDING_DOMAINS). The development key's `domains` and every key `npm run keys -- create`
   * makes must be among them or their subdomains. @default `domains`
   */
  readonly sendingDomains?: readonly string[];
  /** @default '<stateDir>/outbox' */
  readonly outboxDir?: string;
  /** Development keys and logs. @default '.baton' */
  readonly stateDir?: string;
  /** PEM to sign with; @default a development key generated in `<stateDir>/dkim/` */
  readonly dkimKeyFile?: string;
  /** @default 'baton' */
  readonly dkimSelector?: string;
  /** Emulator ports; 0 (default) lets the OS choose. */
  readonly ports?: { readonly dynamodb?: number; readonly sqsSns?: number; readonly ses?: number };
  /** Pause between SES stand-in events (a fault plan's `eventDelayMs` wins). @default 50 */
  readonly eventDelayMs?: number;
  readonly faults?: FaultPlan;
  /**
   * Lets a caller put its own hop between the function processes and a service (the soak's fault
   * proxy, the bench's meter; see `emulators/aws-proxy.ts`): called once per service with the
   * emulator's endpoint, returns the one the functions use. The pollers (Lambda's event source
   * mappings) reach SQS through it too. The caller stops what it started.
   */
  readonly wrapEndpoint?: (service: ProxiedService, endpoint: string) => Promise<string>;
  /**
   * Caps the event sources' batching windows (the feedback queue's is 5 s): tests that wait for
   * each event one after another set 0. @default the template's
   */
  readonly maxBatchingWindowSeconds?: number;
  /** CDK context for the synthesized stack besides `domain` (e.g. `{ maxSendRate: '200' }`). */
  readonly context?: Readonly<Record<string, string>>;
  /** Function log level (Powertools). @default 'INFO' */
  readonly logLevel?: string;
  /**
   * Extra variables for every function process, over the template's (e.g. a short
   * BATON_KEY_CACHE_SECONDS in tests). @default {}
   */
  readonly functionEnvironment?: Readonly<Record<string, string>>;
  readonly onAccess?: (entry: AccessLogEntry) => void;
  /** Sees every answer of the HTTP API, body included (tests check them against the OpenAPI document). */
  readonly onResponse?: (response: ObservedResponse) => void;
  readonly standinLogger?: StandinLogger;
  /**
   * The SMTP front door on 127.0.0.1 (`npm start` turns it on at 2525; 0 picks a free port).
   * @default off
   */
  readonly smtp?: { readonly port?: number };
}

export interface LocalBaton {
  readonly url: string;
  /** The local console (`<url>/console`): messages, outbox, suppressions, stats, webhooks. */
  readonly consoleUrl: string;
  readonly apiKey: string;
  readonly apiKeySource: string;
  readonly domains: readonly string[];
  /** The SES identities this local deployment sends from (BATON_SENDING_DOMAINS). */
  readonly sendingDomains: readonly string[];
  readonly outboxDir: string;
  readonly logDir: string;
  readonly dkim: DevelopmentDkim;
  readonly dkimRecords: ReadonlyArray<{ name: string; value: string }>;
  readonly endpoints: { readonly dynamodb: string; readonly sqs: string; readonly ses: string };
  readonly plan: LocalPlan;
  readonly queues: ReadonlyMap<string, { url: string; arn: string; name: string }>;
  readonly pools: ReadonlyMap<string, FunctionPool>;
  readonly pollers: ReadonlyMap<string, SqsPoller>;
  readonly ses: SesStandin;
  /** SES events the stand-in has published to SNS so far. */
  eventsPublished(): number;
  readonly startupMs: number;
  /** The SMTP front door, when asked for: its port and the certificate it offers with STARTTLS. */
  readonly smtp?: { readonly port: number; readonly certificate: DevelopmentCertificate };
  stop(): Promise<void>;
}

export type ProxiedService = 'dynamodb' | 'sqs' | 'sesv2' | 's3';

/** Synthesizes the stack (no bundling, no nag: fast) and returns its template. */
export function synthTemplate(domain: string, context: Readonly<Record<string, string>> = {}): CfnTemplate {
  const outdir = mkdtempSync(join(tmpdir(), 'baton-synth-'));
  try {
    const { app } = createApp({ bundle: false, nag: false, outdir, context: { ...context, domain } });
    return app.synth().getStackByName(STACK_ID).template as CfnTemplate;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * Runs the whole pipeline on this machine: the stack's template read into a plan, emulators on
 * 127.0.0.1 provisioned from it, the real handler modules in function processes, SQS event
 * sources, the HTTP API and the SES stand-in. Nothing here decides anything about mail: that is
 * all in the handlers, exactly as deployed.
 */
export async function startLocal(options: LocalOptions = {}): Promise<LocalBaton> {
  const started = Date.now();
  const stateDir = resolve(options.stateDir ?? '.baton');
  const outboxDir = resolve(options.outboxDir ?? join(stateDir, 'outbox'));
  const logDir = join(stateDir, 'logs');
  mkdirSync(outboxDir, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const domains = options.domains?.length ? options.domains : ['example.com'];
  const { token: apiKey, source: apiKeySource } = developmentApiKey(stateDir, options.apiKey);
  const sendingDomains = options.sendingDomains?.length ? options.sendingDomains : domains;
  const developmentKey = developmentKeyItem(apiKey, domains, sendingDomains);
  const dkim = developmentDkim(stateDir, options.dkimSelector ?? 'baton', options.dkimKeyFile);
  const erasureSecret = developmentErasureSecret(stateDir);

  const cleanups: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch {
        // Keep stopping the rest.
      }
    }
  };

  try {
    const eventDelayMs = options.faults?.eventDelayMs ?? options.eventDelayMs ?? 50;
    // Local mode's own event path: the feedback queue's visibility shortened, and the senders'
    // confirmation window derived from it (seconds here, minutes deployed).
    const eventPath = localEventPath(
      planFromTemplate(
        synthTemplate(sendingDomains[0] ?? 'example.com', {
          ...options.context,
          domains: sendingDomains.join(','),
        }),
      ),
      {
        eventDelayMs,
        ...(options.maxBatchingWindowSeconds === undefined
          ? {}
          : { maxBatchingWindowSeconds: options.maxBatchingWindowSeconds }),
      },
    );
    const plan = eventPath.plan;

    const [dynamo, sqsSns] = await Promise.all([
      startDynamo({ port: options.ports?.dynamodb ?? 0 }),
      startSqsSns({ port: options.ports?.sqsSns ?? 0, region: REGION }),
    ]);
    cleanups.push(
      () => dynamo.stop(),
      () => sqsSns.stop(),
    );

    const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
    const dynamoClient = new DynamoDBClient({ region: REGION, endpoint: dynamo.endpoint, credentials });
    const sqs = new SQSClient({
      region: REGION,
      endpoint: sqsSns.endpoint,
      credentials,
      useQueueUrlAsEndpoint: false,
    });
    const sns = new SNSClient({ region: REGION, endpoint: sqsSns.endpoint, credentials });
    // fauxqs serves S3 on the same endpoint as SQS and SNS.
    const s3 = new S3Client({ region: REGION, endpoint: sqsSns.endpoint, credentials, forcePathStyle: true });
    cleanups.push(() => {
      dynamoClient.destroy();
      sqs.destroy();
      sns.destroy();
      s3.destroy();
    });
    const physical = await provision(plan, { dynamo: dynamoClient, sqs, sns, s3 });

    // SES event publishes to SNS (each one a billed SNS publish and SQS delivery when deployed).
    let published = 0;
    const standinLog = createWriteStream(join(logDir, 'ses-standin.log'), { flags: 'a' });
    cleanups.push(() => {
      standinLog.end();
    });
    const ses = await startSesStandin({
      port: options.ports?.ses ?? 0,
      outboxDir,
      region: REGION,
      eventDelayMs,
      // The senders' confirmation window is derived from this delay: a plan set later must not exceed it.
      maxEventDelayMs: eventDelayMs,
      ...(options.faults ? { faults: options.faults } : {}),
      logger: options.standinLogger ?? streamLogger(standinLog),
      eventDestinations: plan.eventDestinations.map((d) => ({
        configurationSet: physical.configurationSets.get(d.configurationSet) ?? d.configurationSet,
        topicArn: physical.topics.get(d.topic) ?? '',
        eventTypes: d.eventTypes,
      })),
      configurationSets: [...physical.configurationSets.values()],
      publish: async (topicArn, message) => {
        await sns.send(new PublishCommand({ TopicArn: topicArn, Message: message }));
        published++;
      },
    });
    cleanups.push(async () => {
      await ses.settled();
      await ses.stop();
    });

    const direct = {
      dynamodb: dynamo.endpoint,
      sqs: sqsSns.endpoint,
      sesv2: ses.endpoint,
      s3: sqsSns.endpoint,
    };
    const wrapped = new Map<ProxiedService, string>();
    for (const service of ['dynamodb', 'sqs', 'sesv2', 's3'] as const) {
      const endpoint = direct[service];
      wrapped.set(service, options.wrapEndpoint ? await options.wrapEndpoint(service, endpoint) : endpoint);
    }
    const via = (service: ProxiedService) => wrapped.get(service) ?? direct[service];
    const endpoints = { dynamodb: via('dynamodb'), sqs: via('sqs'), ses: via('sesv2'), s3: via('s3') };
    const pools = new Map<string, FunctionPool>();
    const logs: number[] = [];
    cleanups.push(() => {
      for (const fd of logs) closeSync(fd);
    });
    const concurrency = new Map<string, number>();
    for (const e of plan.eventSources)
      concurrency.set(e.function, (concurrency.get(e.function) ?? 0) + e.maxConcurrency);

    const environments = new Map(
      plan.functions.map((fn) => [fn.logicalId, resolveEnvironment(fn.environment, physical)]),
    );
    // The function behind the HTTP API: local mode seeds its key table, the keys CLI reads its names.
    const apiFunction = plan.functions.find((f) => plan.routes.some((r) => r.function === f.logicalId));
    const apiEnvironment = (apiFunction && environments.get(apiFunction.logicalId)) ?? {};
    for (const fn of plan.functions) {
      const env = environments.get(fn.logicalId) ?? {};
      // The function's processes append to the file themselves: piping every log line through
      // this process (which also runs the emulators) cost it a sixth of its CPU under load.
      const log = openSync(join(logDir, `${fn.logicalId}.log`), 'a');
      logs.push(log);
      pools.set(
        fn.logicalId,
        new FunctionPool({
          name: fn.logicalId,
          entry: join(REPO_ROOT, fn.entry),
          env: {
            ...functionBaseEnv(fn.logicalId, fn.memoryMb, endpoints, sqsSns.endpoint, options.logLevel),
            ...env,
            // Local mode always signs (DESIGN §5); deployed, SES Easy DKIM does.
            ...(EnvVar.lane in env
              ? { [EnvVar.dkimKeyFile]: dkim.file, [EnvVar.dkimSelector]: dkim.selector }
              : {}),
            // No Secrets Manager here: the erasure secret itself instead of its ARN.
            ...(EnvVar.erasureSecretArn in env ? { [EnvVar.erasureSecret]: erasureSecret } : {}),
            ...(EnvVar.confirmationWindowSeconds in env
              ? { [EnvVar.confirmationWindowSeconds]: String(eventPath.confirmationWindowSeconds) }
              : {}),
            ...options.functionEnvironment,
          },
          timeoutMs: fn.timeoutSeconds * 1000,
          maxConcurrency: concurrency.get(fn.logicalId) ?? API_CONCURRENCY,
          log,
        }),
      );
    }
    cleanups.push(() => Promise.all([...pools.values()].map((p) => p.stop())).then(() => undefined));

    const keysTable = apiEnvironment[EnvVar.apiKeysTable];
    if (!keysTable) throw new Error('the template has no api function with an API keys table');
    await Promise.all([
      new DynamoApiKeyStore(createDocumentClient(dynamoClient), keysTable).put(developmentKey),
      ...[...pools.values()].map((p) => p.start()),
    ]);

    const pollers = new Map<string, SqsPoller>();
    const pollerSqs =
      via('sqs') !== direct.sqs
        ? new SQSClient({ region: REGION, endpoint: via('sqs'), credentials, useQueueUrlAsEndpoint: false })
        : sqs;
    if (pollerSqs !== sqs) cleanups.push(() => pollerSqs.destroy());
    for (const e of plan.eventSources) {
      const queue = physical.queues.get(e.queue);
      const pool = pools.get(e.function);
      if (!queue || !pool) throw new Error(`event source ${e.logicalId}: unknown queue or function`);
      const poller = new SqsPoller(pollerSqs, pool, {
        queueUrl: queue.url,
        queueArn: queue.arn,
        batchSize: e.batchSize,
        maxBatchingWindowSeconds: Math.min(
          e.maxBatchingWindowSeconds,
          options.maxBatchingWindowSeconds ?? Number.POSITIVE_INFINITY,
        ),
        maxConcurrency: e.maxConcurrency,
        reportBatchItemFailures: e.reportBatchItemFailures,
      });
      poller.start();
      pollers.set(e.logicalId, poller);
    }
    // Pollers stop before the function processes (cleanups run in reverse).
    cleanups.push(() => Promise.all([...pollers.values()].map((p) => p.stop())).then(() => undefined));

    const messagesTable = apiEnvironment[EnvVar.messagesTable];
    if (!messagesTable) throw new Error('the template has no api function with a Messages table');
    let apiUrl = '';
    // Beside the API, in this process: the console reads the tables and acts through the API.
    const localConsole = createConsole({
      apiKey,
      tenant: DEVELOPMENT_TENANT,
      apiUrl: () => apiUrl,
      messages: new DynamoMessageStore(createDocumentClient(dynamoClient), messagesTable),
      outboxDir,
      fromDomain: domains[0] ?? 'example.com',
    });
    const gateway = createGateway(
      plan.routes.map((r) => {
        const pool = pools.get(r.function);
        if (!pool) throw new Error(`route ${r.routeKey}: unknown function ${r.function}`);
        return { routeKey: r.routeKey, pool };
      }),
      options.onAccess,
      localConsole.handle,
      options.onResponse,
    );
    const { port } = await listenOnLoopback(gateway, {
      port: options.port ?? 3000,
      service: 'Baton HTTP API',
      envVar: 'BATON_PORT',
    });
    apiUrl = `http://127.0.0.1:${port}`;
    cleanups.push(() => {
      localConsole.close();
      return closeServer(gateway);
    });
    // After the API has its port: a taken port fails the start before anything else is spawned.
    let smtp: LocalBaton['smtp'];
    if (options.smtp) {
      const certificate = await developmentCertificate(stateDir);
      const log = openSync(join(logDir, 'Smtp.log'), 'a');
      logs.push(log);
      const server = await startLocalSmtp({
        env: {
          ...functionBaseEnv('Smtp', 512, endpoints, sqsSns.endpoint, options.logLevel),
          ...apiEnvironment,
          [EnvVar.erasureSecret]: erasureSecret,
          ...options.functionEnvironment,
        },
        port: options.smtp.port ?? 0,
        certificate,
        log,
      });
      cleanups.push(() => server.stop());
      smtp = { port: server.port, certificate };
    }

    const url = `http://127.0.0.1:${port}`;

    // How tools (`npm run keys -- --local`) find this instance: its endpoints and table names.
    const stateFile = join(stateDir, LOCAL_STATE_FILE);
    const state: LocalState = {
      pid: process.pid,
      url,
      region: REGION,
      endpoints: { dynamodb: direct.dynamodb, sqs: direct.sqs, ses: direct.sesv2 },
      environment: apiEnvironment,
      sendingDomains,
    };
    writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    cleanups.push(() => rmSync(stateFile, { force: true }));

    return {
      url,
      consoleUrl: `${url}${CONSOLE_PATH}`,
      apiKey,
      apiKeySource,
      domains,
      sendingDomains,
      outboxDir,
      logDir,
      dkim,
      dkimRecords: domains.map((d) => dkimRecord(dkim, d)),
      endpoints: { dynamodb: direct.dynamodb, sqs: direct.sqs, ses: direct.sesv2 },
      plan,
      queues: physical.queues,
      pools,
      pollers,
      ses,
      eventsPublished: () => published,
      startupMs: Date.now() - started,
      ...(smtp ? { smtp } : {}),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * What a function process sees besides its template environment: fake credentials and the
 * emulator endpoints (through the SDK's standard AWS_ENDPOINT_URL_<SERVICE> variables, so the
 * handlers carry no local-mode code). Nothing is inherited from the developer's shell, so real
 * AWS credentials can never reach a local function.
 */
export function functionBaseEnv(
  name: string,
  memoryMb: number,
  endpoints: { dynamodb: string; sqs: string; ses: string; s3: string },
  sns: string,
  logLevel: string | undefined,
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    TZ: 'UTC',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_SNS: sns,
    AWS_ENDPOINT_URL_SESV2: endpoints.ses,
    // fauxqs serves S3 on the SQS/SNS endpoint, by path only: `<bucket>.127.0.0.1` does not resolve.
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    [EnvVar.s3ForcePathStyle]: 'true',
    // The SES stand-in delivers to the mailbox simulator: count those recipients, or local mode
    // could never exercise the abuse guard (deployed they are left out, as SES leaves them out).
    [EnvVar.guardCountSimulator]: '1',
    // A developer receives webhooks on their own machine: http://127.0.0.1 and localhost endpoints
    // are allowed here alone, and a new endpoint gets events within a second of its registration.
    [EnvVar.webhookAllowLoopback]: '1',
    [EnvVar.webhookDirectorySeconds]: '1',
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
    POWERTOOLS_LOG_LEVEL: logLevel ?? 'INFO',
  };
}

export { LOCAL_STATE_FILE, LocalPortEnvVar, type LocalState };
