import { buildApp } from 'fauxqs';
import { isAddressInUse, LocalPortEnvVar, PortInUseError } from './errors.ts';
import {
  assertPort,
  boundAddress,
  type EmulatorOptions,
  LOOPBACK_HOST,
  type LocalEmulator,
  loopbackEmulator,
} from './listen.ts';

/** `portEnvVar` defaults to BATON_LOCAL_SQS_SNS_PORT. */
export interface StartSqsSnsOptions extends EmulatorOptions {
  /** Region used in ARNs and queue URLs when a request does not carry one. @default 'us-east-1' */
  readonly region?: string;
}

const SERVICE = 'SQS/SNS emulator (fauxqs)';

/**
 * Starts fauxqs (SQS + SNS in one in-memory server) on 127.0.0.1.
 *
 * fauxqs's own `startFauxqs()` always binds 0.0.0.0, so this builds its app and listens itself.
 * Queue URLs it returns look like `http://sqs.<region>.localhost:<port>/000000000000/<name>`, a host
 * name the resolver may not know: SQS clients need `endpoint` set to {@link LocalEmulator.endpoint}
 * and `useQueueUrlAsEndpoint: false`, so the URL only names the queue.
 *
 * @throws {PortInUseError} when the port is taken.
 */
export const startSqsSns = async (options: StartSqsSnsOptions = {}): Promise<LocalEmulator> => {
  const requestedPort = options.port ?? 0;
  assertPort(requestedPort, SERVICE);
  const app = buildApp({ logger: false, defaultRegion: options.region ?? 'us-east-1' });
  refuseDelaysBeyondSqsLimit(app);
  try {
    await app.listen({ port: requestedPort, host: LOOPBACK_HOST });
  } catch (error) {
    await app.close();
    if (isAddressInUse(error)) {
      throw new PortInUseError({
        service: SERVICE,
        port: requestedPort,
        host: LOOPBACK_HOST,
        envVar: options.portEnvVar ?? LocalPortEnvVar.sqsSns,
        cause: error,
      });
    }
    throw error;
  }
  // fauxqs builds Fastify with forceCloseConnections, so close() does not wait for keep-alive.
  return loopbackEmulator(boundAddress(app.server), () => app.close());
};

/** SQS's longest message delay (SendMessage and SendMessageBatch `DelaySeconds`). */
export const SQS_MAX_DELAY_SECONDS = 900;

type JsonBody = Record<string, unknown>;
interface BatchFailure {
  readonly Id: string;
  readonly SenderFault: true;
  readonly Code: 'InvalidParameterValue';
  readonly Message: string;
}

const delayRefusal = (delay: unknown): string =>
  `Value ${String(delay)} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= ${SQS_MAX_DELAY_SECONDS}.`;

const outOfRange = (delay: unknown): boolean =>
  delay !== undefined &&
  (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > SQS_MAX_DELAY_SECONDS);

/**
 * fauxqs honours any per-message `DelaySeconds`, SQS none above 900: a SendMessage is refused
 * (InvalidParameterValue) and a SendMessageBatch entry fails, the others being sent. Without this a
 * caller that forgot SQS's limit (the webhook retries wait far longer than 15 minutes) would pass
 * locally and fail deployed. Requests arrive in the JSON protocol the SDK v3 speaks.
 */
function refuseDelaysBeyondSqsLimit(app: ReturnType<typeof buildApp>): void {
  const refused = new WeakMap<object, BatchFailure[]>();
  app.addHook('preHandler', async (request, reply) => {
    const action = String(request.headers['x-amz-target'] ?? '').replace('AmazonSQS.', '');
    const body = request.body as JsonBody | undefined;
    if (body === undefined || body === null || typeof body !== 'object') return;
    if (action === 'SendMessage' && outOfRange(body.DelaySeconds)) {
      reply
        .status(400)
        .header('content-type', 'application/x-amz-json-1.0')
        .header('x-amzn-query-error', 'AWS.SimpleQueueService.InvalidParameterValue;Sender');
      return reply.send({
        __type: 'com.amazonaws.sqs#InvalidParameterValue',
        message: delayRefusal(body.DelaySeconds),
      });
    }
    if (action !== 'SendMessageBatch' || !Array.isArray(body.Entries)) return;
    const entries = body.Entries as JsonBody[];
    const failed: BatchFailure[] = entries
      .filter((entry) => outOfRange(entry.DelaySeconds))
      .map((entry) => ({
        Id: String(entry.Id),
        SenderFault: true,
        Code: 'InvalidParameterValue',
        Message: delayRefusal(entry.DelaySeconds),
      }));
    if (failed.length === 0) return;
    const kept = entries.filter((entry) => !outOfRange(entry.DelaySeconds));
    if (kept.length === 0) {
      reply.header('content-type', 'application/x-amz-json-1.0');
      return reply.send({ Successful: [], Failed: failed });
    }
    body.Entries = kept;
    refused.set(request, failed);
    return undefined;
  });
  app.addHook('onSend', async (request, _reply, payload) => {
    const failed = refused.get(request);
    if (failed === undefined || typeof payload !== 'string') return payload;
    const result = JSON.parse(payload) as { Successful?: unknown[]; Failed?: unknown[] };
    return JSON.stringify({ ...result, Failed: [...(result.Failed ?? []), ...failed] });
  });
}
