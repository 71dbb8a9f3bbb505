import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { closeServer, type LocalEmulator, listenOnLoopback, loopbackEmulator } from './listen.ts';

/**
 * Faults a proxy injects into the calls it passes on. Rates are fractions of all calls, in [0, 1].
 * With an injected `random`, the same plan and the same calls give the same faults.
 */
export interface ProxyFaultPlan {
  /** Calls answered with a retryable error without reaching the emulator. @default 0 */
  readonly failRate?: number;
  /**
   * Calls that reach the emulator and take effect, whose answer is then replaced by a retryable
   * error: the SDK retries a write that already happened (the ambiguous failure of a real network).
   * @default 0
   */
  readonly lostResponseRate?: number;
  /** @default Math.random */
  readonly random?: () => number;
}

export interface ProxyStats {
  /** Calls per operation (`PutItem`, `SendMessageBatch`, `POST /v2/email/outbound-emails`). */
  readonly calls: Readonly<Record<string, number>>;
  /** Calls failed before reaching the emulator. */
  readonly failed: number;
  /** Calls applied by the emulator and then answered with an error. */
  readonly lost: number;
}

export interface AwsProxy extends LocalEmulator {
  stats(): ProxyStats;
  /** Replaces the fault plan (validated as at start). */
  setFaults(plan: ProxyFaultPlan): void;
}

export interface AwsProxyOptions {
  /** Base URL of the emulator behind the proxy. */
  readonly target: string;
  /** Names the proxy in a port-in-use error. */
  readonly service: string;
  readonly faults?: ProxyFaultPlan;
  readonly port?: number;
  /** Replaces a request's body before it is passed on (a meter asking for consumed capacity). */
  readonly rewrite?: (req: IncomingMessage, body: Buffer) => Buffer;
  /** Sees every call the emulator answered, with the body sent and the answer (a meter). */
  readonly observe?: (req: IncomingMessage, body: Buffer, status: number, answer: Buffer) => void;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of an AWS emulator: counts every call by operation and, for
 * the fault soak, fails a share of them the way AWS does (a 500 InternalServerError or a throttling
 * error the SDK retries), before or after the emulator applied them. Function processes reach the
 * emulator through it via their `AWS_ENDPOINT_URL_<SERVICE>`, so the handlers see real SDK errors
 * and real retries, and carry no fault-injection code.
 */
export async function startAwsProxy(options: AwsProxyOptions): Promise<AwsProxy> {
  const target = new URL(options.target);
  let plan = validateProxyFaults(options.faults ?? {});
  const calls: Record<string, number> = {};
  let failed = 0;
  let lost = 0;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const received = Buffer.concat(chunks);
      const body = options.rewrite ? options.rewrite(req, received) : received;
      const operation = operationOf(req);
      calls[operation] = (calls[operation] ?? 0) + 1;
      const { failRate = 0, lostResponseRate = 0 } = plan;
      const draw = failRate > 0 || lostResponseRate > 0 ? (plan.random ?? Math.random)() : 1;
      if (draw < failRate) {
        failed++;
        answerFault(req, res, draw < failRate / 2);
        return;
      }
      const loseAnswer = draw < failRate + lostResponseRate;
      const upstream = request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host, 'content-length': String(body.length) },
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('error', () => res.destroy());
          answer.on('end', () => {
            options.observe?.(req, body, answer.statusCode ?? 500, Buffer.concat(parts));
            if (loseAnswer) {
              lost++;
              answerFault(req, res, false);
              return;
            }
            res.writeHead(answer.statusCode ?? 500, answer.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });

  const address = await listenOnLoopback(server, {
    port: options.port ?? 0,
    service: `${options.service} proxy`,
    envVar: 'BATON_LOCAL_PROXY_PORT',
  });
  const emulator = loopbackEmulator(address, () => {
    server.closeAllConnections();
    return closeServer(server);
  });
  return {
    ...emulator,
    stats: () => ({ calls: { ...calls }, failed, lost }),
    setFaults(next) {
      plan = validateProxyFaults(next);
    },
  };
}

/** A typo in a soak must not silently mean "no faults". */
export function validateProxyFaults(plan: ProxyFaultPlan): ProxyFaultPlan {
  for (const key of Object.keys(plan)) {
    if (!['failRate', 'lostResponseRate', 'random'].includes(key))
      throw new TypeError(`ProxyFaultPlan: unknown option '${key}'`);
  }
  const { failRate = 0, lostResponseRate = 0 } = plan;
  for (const [name, rate] of [
    ['failRate', failRate],
    ['lostResponseRate', lostResponseRate],
  ] as const) {
    if (!(rate >= 0 && rate <= 1))
      throw new RangeError(`ProxyFaultPlan: ${name} must be in [0, 1], got ${rate}`);
  }
  if (failRate + lostResponseRate > 1)
    throw new RangeError('ProxyFaultPlan: the rates add up to more than 1');
  return plan;
}

/**
 * The operation of an AWS call: the JSON protocols (DynamoDB, SQS) name it in X-Amz-Target; the
 * REST ones (SES v2, S3) by method and path, with ids dropped.
 */
export function operationOf(req: Pick<IncomingMessage, 'headers' | 'method' | 'url'>): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.slice(target.lastIndexOf('.') + 1);
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const fixed = path.startsWith('/v2/') ? path : `/${path.split('/')[1] ?? ''}`;
  return `${req.method ?? 'GET'} ${fixed}`;
}

/**
 * What AWS answers when it fails a call: a JSON-protocol error both DynamoDB and SQS clients read
 * and retry. `throttle` picks the 400 throttling error, otherwise a 500.
 */
function answerFault(req: IncomingMessage, res: ServerResponse, throttle: boolean): void {
  const target = String(req.headers['x-amz-target'] ?? '');
  const prefix = target.startsWith('DynamoDB') ? 'com.amazonaws.dynamodb.v20120810#' : '';
  const type = throttle
    ? target.startsWith('DynamoDB')
      ? 'ProvisionedThroughputExceededException'
      : 'ThrottlingException'
    : 'InternalServerError';
  const body = JSON.stringify({ __type: `${prefix}${type}`, message: 'injected by the local fault proxy' });
  res.writeHead(throttle ? 400 : 500, {
    'content-type': 'application/x-amz-json-1.0',
    'x-amzn-errortype': type,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
