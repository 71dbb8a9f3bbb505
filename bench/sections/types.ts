/**
 * What `bench/run.ts` and its sections share: the row every figure becomes, the section interface,
 * and the context through which sections hand each other results (cost reads CPU, memory, log and
 * request figures measured by the sections before it).
 */

/** One figure of the table (and of `bench/results/latest.json`). */
export interface Row {
  readonly section: string;
  readonly figure: string;
  readonly value: number | string;
  readonly unit?: string;
  /** The target in words, e.g. `≤ floor + 250 KB`. */
  readonly target?: string;
  /** The comparison point (a floor bundle, the configured memory size). */
  readonly floor?: number | string;
  /** value ÷ floor, where that is what the target is about. */
  readonly ratio?: number;
  /** Whether the figure meets its target; absent when the figure has none. */
  readonly pass?: boolean;
  readonly note?: string;
}

/** The functions the stack deploys, by the name the bench uses for them. */
export type FunctionName = 'api' | 'sender' | 'feedback' | 'erasure';

/** Medians from the CPU section, microseconds of CPU (user + system) on this machine. */
export interface CpuFigures {
  /** POST /v1/messages, one 10 KB message, the whole request. */
  readonly apiRequestUs: number;
  /** POST /v1/messages/batch of `apiBatchSize` 10 KB messages, the whole request. */
  readonly apiBatchUs: number;
  readonly apiBatchSize: number;
  /** validateSendRequest + applySenderPolicy, one 10 KB message. */
  readonly apiValidateUs: number;
  /** composeMime + signDkim, one 10 KB message. */
  readonly senderMimeDkimUs: number;
  /** The sender app for one SQS record (parse, suppression read, claim, MIME, DKIM, send, status). */
  readonly senderRecordUs: number;
  /** processFeedback per event kind (`delivery`, `send`, `hard bounce`, …). */
  readonly feedbackUs: Readonly<Record<string, number>>;
}

/** A bundle as the stack builds it, and its floor. */
export interface BundleFigures {
  readonly fn: FunctionName;
  /** The minified handler bundle (ESM), without its source map. */
  readonly file: string;
  readonly bytes: number;
  readonly floorFile: string;
  readonly floorBytes: number;
  /** Medians over the init runs, ms: the dynamic import inside a fresh `node` process. */
  readonly importMs: number;
  readonly floorImportMs: number;
  /** Medians, ms: the whole `node` process, spawn to exit. */
  readonly processMs: number;
  readonly floorProcessMs: number;
}

/** AWS usage on the wire for some invocations, summed. */
export interface WireUsage {
  /** Calls by `Service Operation` (e.g. `DynamoDB PutItem`), retries included. */
  readonly calls: Readonly<Record<string, number>>;
  /** DynamoDB capacity units by `Table Operation`, as the emulator reports them (index writes added). */
  readonly dynamoWru: number;
  readonly dynamoRru: number;
  readonly dynamoUnits: Readonly<Record<string, { wru: number; rru: number }>>;
  /** SQS requests as billed: one per started 64 KB of payload (request for sends, response for receives). */
  readonly sqsBilled: number;
  readonly sesCalls: number;
  readonly snsPublishes: number;
  readonly s3Calls: number;
}

/** One invocation of a real handler bundle in a probe process. */
export interface InvocationFigures {
  readonly cpuUs: number;
  readonly wallMs: number;
  /** Bytes and lines the handler wrote to stdout/stderr (Powertools JSON logs and EMF metrics). */
  readonly logBytes: number;
  readonly logLines: number;
  /** Of `logBytes`, the EMF metric lines. */
  readonly emfBytes: number;
  readonly wire: WireUsage;
}

/** A handler scenario (e.g. the api's batch request), warm invocations only. */
export interface ScenarioFigures {
  readonly name: string;
  /** Messages (or events, for feedback) one invocation handles. */
  readonly unitsPerInvocation: number;
  readonly invocations: readonly InvocationFigures[];
}

/** A real handler bundle run in its own process (memory section). */
export interface ProbeFigures {
  readonly fn: FunctionName;
  readonly configuredMemoryMb: number;
  readonly initMs: number;
  readonly rssAfterInitMb: number;
  /** Peak resident set size of the process (what Lambda reports as Max Memory Used). */
  readonly peakRssMb: number;
  readonly peakHeapUsedMb: number;
  /** Which full batch the peak was measured on. */
  readonly peakScenario: string;
  /** Custom metrics the instance published (EMF): `namespace|name|dimension=value,…`. */
  readonly metrics: readonly string[];
  readonly cold: InvocationFigures;
  readonly scenarios: Readonly<Record<string, ScenarioFigures>>;
}

/**
 * AWS requests per message measured end to end (the `requests` section, through local mode), for
 * the cost section. When present it replaces the probe counts. Per single-recipient message.
 */
export interface MeasuredRequests {
  /** Where the counts come from, printed next to the cost figures. */
  readonly source: string;
  readonly modes: Readonly<
    Record<
      'batch' | 'single',
      {
        readonly dynamoWru: number;
        readonly dynamoRru: number;
        /** Billed SQS requests (64 KB chunks), lane and feedback queues, event-source polling included. */
        readonly sqsBilled: number;
        readonly sesCalls: number;
        readonly snsPublishes: number;
        readonly s3Calls?: number;
      }
    >
  >;
}

/** Facts read from the synthesized stack. */
export interface StackFacts {
  readonly memoryMb: Readonly<Record<FunctionName, number>>;
  /** Event source mapping batch sizes and batching windows by function. */
  readonly batchSize: Readonly<Partial<Record<FunctionName, number>>>;
  readonly alarms: number;
  /** Metrics the alarms watch: an alarm on a metric-math expression is billed per metric in it. */
  readonly alarmMetrics: number;
  readonly dashboards: number;
  /** Customer managed KMS keys and Secrets Manager secrets (billed per month). */
  readonly kmsKeys: number;
  readonly secrets: number;
  /** Queues with an event source mapping (each polled continuously by Lambda). */
  readonly polledQueues: number;
  /** SES event types the configuration set publishes. */
  readonly publishedEvents: readonly string[];
  /** The senders' send plan: per-instance rate (sends per second) by lane. */
  readonly senderInstanceRate: Readonly<Record<string, number>>;
}

/** Payload sizes seen by the probes, bytes (medians). */
export interface PayloadSizes {
  /** One send job, the lane queue's message body. */
  readonly jobBytes: number;
  /** One SES event by type (`send`, `delivery`), the feedback queue's message body. */
  readonly eventBytes: Readonly<Record<string, number>>;
  readonly batchRequestBytes: number;
  readonly singleRequestBytes: number;
}

export interface Shared {
  cpu?: CpuFigures;
  bundles?: Partial<Record<FunctionName, BundleFigures>>;
  probes?: Partial<Record<FunctionName, ProbeFigures>>;
  payloads?: PayloadSizes;
  /** Table names as the probes' emulator knows them → the stack's names (Messages, Stats, …). */
  tableNames?: Record<string, string>;
  requests?: MeasuredRequests;
  stack?: StackFacts;
  /** Free-form results a section wants in latest.json (cost keeps its breakdown here). */
  extra?: Record<string, unknown>;
}

export interface BenchContext {
  /** Timed runs per CPU figure (`BENCH_ITERATIONS`, default 2,000; never below 1,000 for the per-unit figures). */
  readonly iterations: number;
  /** Fresh processes per init-time figure (`BENCH_INIT_RUNS`, default 10). */
  readonly initRuns: number;
  /** Scratch folder for bundles and probe files, removed when the run ends. */
  readonly tmp: string;
  readonly shared: Shared;
  /** A progress line on stderr (the table goes to stdout). */
  progress(message: string): void;
}

export interface Section {
  readonly name: string;
  readonly title: string;
  /** Sections whose shared results this one reads; the runner runs them first, even when not selected. */
  readonly needs?: readonly string[];
  run(ctx: BenchContext): Promise<Row[]>;
}
