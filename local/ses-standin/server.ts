import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { domainOf } from '../../lambdas/domain/address.ts';
import { MessageTag } from '../../lambdas/shared/names.ts';
import { LocalPortEnvVar } from '../emulators/errors.ts';
import {
  assertPort,
  closeServer,
  type EmulatorOptions,
  type LocalEmulator,
  listenOnLoopback,
  loopbackEmulator,
} from '../emulators/listen.ts';
import {
  KNOWN_MATCHING_EVENT_TYPES,
  MATCHING_EVENT_TYPE,
  outcomeEvent,
  rejectEvent,
  type SesEvent,
  type SesMail,
  sendEvent,
} from './events.ts';
import { AmbiguousAnswerError, type AmbiguousOutcome, FaultInjector, type FaultPlan } from './faults.ts';
import { sesStyleId } from './ids.ts';
import { consoleLogger, maskAddresses, type StandinLogger } from './log.ts';
import { type EventGroup, isDelivered, planEventPhases, recipientSteps } from './mailbox-simulator.ts';
import { buildMail, type EmailTag, MAX_RAW_MESSAGE_BYTES, parseSendEmailRequest } from './send-email.ts';
import { SesApiError } from './ses-api-error.ts';

/** The EmailTag whose value names the outbox file: the sender's tag for Baton's own message id. */
export const OUTBOX_ID_TAG = MessageTag.messageId;

export interface SesEventDestination {
  readonly configurationSet: string;
  readonly topicArn: string;
  /** CloudFormation `MatchingEventTypes` names: send, reject, bounce, complaint, delivery, deliveryDelay, renderingFailure. */
  readonly eventTypes: readonly string[];
}

/** `portEnvVar` defaults to BATON_LOCAL_SES_PORT. */
export interface StartSesStandinOptions extends EmulatorOptions {
  /** Folder for delivered messages (`<baton id>.eml`); created if missing. */
  readonly outboxDir: string;
  /** Publishes one event (JSON text) to an SNS topic; local mode wires it to SNS Publish on fauxqs. */
  readonly publish: (topicArn: string, message: string) => Promise<void>;
  readonly eventDestinations: readonly SesEventDestination[];
  /**
   * Configuration sets that exist without an event destination. A send naming a configuration set
   * that is neither here nor in `eventDestinations` fails with NotFoundException, as on SES.
   * @default []
   */
  readonly configurationSets?: readonly string[];
  /**
   * Verified identities (domains or addresses). When given, a send from anything else fails with
   * MessageRejected "Email address is not verified", as on SES. @default undefined (everything verified)
   */
  readonly verifiedIdentities?: readonly string[];
  /** @default 'us-east-1' */
  readonly region?: string;
  /** Account id in ARNs and `sendingAccountId`. @default '000000000000' (fauxqs's account) */
  readonly accountId?: string;
  /** Pause before the first event and between event phases; the SendEmail answer never waits for it. @default 50 */
  readonly eventDelayMs?: number;
  /**
   * The longest event delay a fault plan may ask for: local mode derives its senders' confirmation
   * window from the delay it started with, and an event later than the window lets a message whose
   * answer was lost be sent twice. @default no limit
   */
  readonly maxEventDelayMs?: number;
  /** Source of event and quota timestamps. @default () => new Date() */
  readonly clock?: () => Date;
  /** @default no faults */
  readonly faults?: FaultPlan;
  readonly logger?: StandinLogger;
}

/** What the stand-in accepted (answered 200), for tests and local-mode diagnostics. */
export interface SentRecord {
  readonly sesMessageId: string;
  /** Value of the `baton_message_id` EmailTag, if the send carried one. */
  readonly batonMessageId: string | undefined;
  readonly configurationSet: string | undefined;
  /** addr-spec of every destination, in request order. */
  readonly recipients: readonly string[];
  /** The recipients the simulator rules deliver (every one but bounce@/suppressionlist@ and rejected sends). */
  readonly delivered: readonly string[];
  /** Absolute path of the outbox copy; undefined when no recipient is delivered. */
  readonly outboxFile: string | undefined;
  /** True when `<id>.eml` already existed, so this copy went to `<id>.dup-<sesMessageId>.eml`. */
  readonly duplicate: boolean;
  readonly tags: readonly EmailTag[];
  readonly acceptedAt: Date;
}

export interface SesStandin extends LocalEmulator {
  sent(): ReadonlyArray<SentRecord>;
  /** Replaces the fault plan from now on (e.g. pause sending mid-soak). */
  setFaults(plan: FaultPlan): void;
  /** Faults injected so far, by kind. */
  faultsInjected(): Readonly<FaultInjector['injected']>;
  /** Every SendEmail answer the stand-in lost on purpose (acceptThenFailRate, failWithoutAcceptRate). */
  ambiguousAnswers(): readonly AmbiguousOutcome[];
  /** Resolves when every event scheduled so far has been published (or given up after retries). */
  settled(): Promise<void>;
}

const SERVICE = 'SES stand-in';
const SEND_EMAIL_PATH = '/v2/email/outbound-emails';
const ACCOUNT_PATH = '/v2/email/account';
// Base64 inflates 4/3, plus JSON around it: anything beyond this cannot be a message SES would take.
const MAX_REQUEST_BYTES = Math.ceil((MAX_RAW_MESSAGE_BYTES * 4) / 3) + 1024 * 1024;
const PUBLISH_ATTEMPTS = 4;
const DAY_MS = 24 * 60 * 60 * 1000;
// Quota of a typical account just out of the sandbox (GetAccount).
const MAX_24_HOUR_SEND = 50_000;
const MAX_SEND_RATE = 14;

/**
 * Starts an SES v2 stand-in on 127.0.0.1 that the real `@aws-sdk/client-sesv2` can talk to (set
 * `endpoint`, or `AWS_ENDPOINT_URL_SESV2`). It implements SendEmail (raw content) and GetAccount,
 * writes each delivered message byte-for-byte to the outbox, and publishes configuration-set events
 * following the mailbox-simulator rules through `publish`.
 *
 * @throws {PortInUseError} when the port is taken.
 */
export const startSesStandin = async (options: StartSesStandinOptions): Promise<SesStandin> => {
  const requestedPort = options.port ?? 0;
  assertPort(requestedPort, SERVICE);
  validateDestinations(options.eventDestinations);
  const outboxDir = resolve(options.outboxDir);
  await mkdir(outboxDir, { recursive: true });

  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const standinDelayMs = options.eventDelayMs ?? 50;
  const clock = options.clock ?? (() => new Date());
  const logger = options.logger ?? consoleLogger;
  const faults = new FaultInjector(options.faults);
  // Read at each pause, so a plan set mid-run (setFaults) takes effect for the next events.
  const eventDelayMs = (): number => faults.plan.eventDelayMs ?? standinDelayMs;
  const knownConfigurationSets = new Set([
    ...(options.configurationSets ?? []),
    ...options.eventDestinations.map((destination) => destination.configurationSet),
  ]);
  const verified = options.verifiedIdentities?.map((identity) => identity.toLowerCase());

  const accepted: SentRecord[] = [];
  const pending = new Set<Promise<void>>();
  const stopSignal = new AbortController();

  const sendEmail = async (body: unknown): Promise<{ MessageId: string }> => {
    const draw = faults.beforeValidation();
    const request = parseSendEmailRequest(body);
    if (request.configurationSet !== undefined && !knownConfigurationSets.has(request.configurationSet)) {
      throw new SesApiError(
        'NotFoundException',
        `Configuration set <${request.configurationSet}> does not exist.`,
      );
    }
    if (verified && !isVerified(request.sourceAddress, verified)) {
      throw new SesApiError(
        'MessageRejected',
        `Email address is not verified. The following identities failed the check in region ${region.toUpperCase()}: ${request.source}`,
      );
    }
    faults.afterValidation(draw);

    const batonMessageId = request.tags.find((tag) => tag.name === OUTBOX_ID_TAG)?.value;
    const lost = faults.loseAnswer(batonMessageId);
    // SES failed before keeping anything: no copy, no events; the caller cannot know that.
    if (lost && !lost.kept) throw new AmbiguousAnswerError(lost.answer);
    const acceptedAt = clock();
    const sesMessageId = sesStyleId(acceptedAt);
    const rejectedLater = faults.rejectAfterAccept();
    const plans = request.recipients.map((recipient) => {
      const steps = recipientSteps(recipient);
      const delayFirst = !rejectedLater && isDelivered(steps) && faults.delayDelivery();
      return { recipient, steps: delayFirst ? recipientSteps(recipient, { delayFirst }) : steps };
    });
    const delivered = rejectedLater
      ? []
      : plans.filter((plan) => isDelivered(plan.steps)).map((p) => p.recipient);

    // The copy is on disk before the 200: whoever reads the outbox after SendEmail returns finds it.
    const outbox =
      delivered.length > 0
        ? await writeOutbox(outboxDir, batonMessageId ?? sesMessageId, sesMessageId, request.raw)
        : undefined;
    const record: SentRecord = {
      sesMessageId,
      batonMessageId,
      configurationSet: request.configurationSet,
      recipients: request.recipients,
      delivered,
      outboxFile: outbox?.file,
      duplicate: outbox?.duplicate ?? false,
      tags: request.tags,
      acceptedAt,
    };
    accepted.push(record);
    logger.info('message accepted', {
      sesMessageId,
      batonMessageId,
      recipients: request.recipients.length,
      delivered: delivered.length,
      bytes: request.raw.length,
      duplicate: record.duplicate,
    });

    const mail = buildMail(request, { sesMessageId, acceptedAt, region, accountId });
    track(publishEvents(mail, request.configurationSet, rejectedLater ? 'rejected' : planEventPhases(plans)));
    // Kept, delivered and publishing events, but the answer is lost on the way back.
    if (lost) throw new AmbiguousAnswerError(lost.answer);
    return { MessageId: sesMessageId };
  };

  const track = (work: Promise<void>): void => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };

  /** Send first, then (after the same pause each time) each phase of recipient outcomes. */
  const publishEvents = async (
    mail: SesMail,
    configurationSet: string | undefined,
    phases: EventGroup[][] | 'rejected',
  ): Promise<void> => {
    const destinations = options.eventDestinations.filter((d) => d.configurationSet === configurationSet);
    if (destinations.length === 0) return;
    try {
      await sleep(eventDelayMs(), undefined, { signal: stopSignal.signal });
      await emit(destinations, sendEvent(mail));
      if (phases === 'rejected') {
        await sleep(eventDelayMs(), undefined, { signal: stopSignal.signal });
        await emit(destinations, rejectEvent(mail));
        return;
      }
      for (const phase of phases) {
        await sleep(eventDelayMs(), undefined, { signal: stopSignal.signal });
        const at = clock();
        for (const group of phase) await emit(destinations, outcomeEvent(mail, group, at));
      }
    } catch (error) {
      // Never rethrow: this promise is not awaited by anyone, and a rejection would crash local mode.
      if (!stopSignal.signal.aborted) {
        logger.error('event publishing stopped', {
          sesMessageId: mail.messageId,
          error: error instanceof Error ? error.name : 'unknown',
        });
      }
    }
  };

  const emit = async (destinations: readonly SesEventDestination[], event: SesEvent): Promise<void> => {
    const matching = MATCHING_EVENT_TYPE[event.eventType];
    const message = JSON.stringify(event);
    for (const destination of destinations) {
      if (!destination.eventTypes.includes(matching)) continue;
      await publishWithRetry(destination.topicArn, message, event);
    }
  };

  // A failing SNS must never take the stand-in (or local mode) down: retry, then log and move on,
  // which is what SES does when it cannot reach an event destination.
  const publishWithRetry = async (topicArn: string, message: string, event: SesEvent): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await options.publish(topicArn, message);
        return;
      } catch (error) {
        if (stopSignal.signal.aborted) return;
        if (attempt >= PUBLISH_ATTEMPTS) {
          logger.error('event publish failed; event dropped', {
            sesMessageId: event.mail.messageId,
            eventType: event.eventType,
            topic: topicArn.slice(topicArn.lastIndexOf(':') + 1),
            attempts: attempt,
            error: error instanceof Error ? `${error.name}: ${maskAddresses(error.message)}` : 'unknown',
          });
          return;
        }
        await sleep(25 * 2 ** attempt, undefined, { signal: stopSignal.signal });
      }
    }
  };

  const getAccount = (): Record<string, unknown> => {
    const since = clock().getTime() - DAY_MS;
    const sentLast24Hours = accepted
      .filter((record) => record.acceptedAt.getTime() > since)
      .reduce((sum, record) => sum + record.recipients.length, 0);
    return {
      DedicatedIpAutoWarmupEnabled: false,
      EnforcementStatus: 'HEALTHY',
      ProductionAccessEnabled: true,
      SendQuota: {
        Max24HourSend: MAX_24_HOUR_SEND,
        MaxSendRate: MAX_SEND_RATE,
        SentLast24Hours: sentLast24Hours,
      },
      SendingEnabled: !faults.sendingPaused,
      SuppressionAttributes: { SuppressedReasons: ['BOUNCE', 'COMPLAINT'] },
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://standin').pathname;
    if (req.method === 'POST' && path === SEND_EMAIL_PATH) {
      const body = await readJsonBody(req);
      try {
        answer(res, 200, await sendEmail(body));
      } catch (error) {
        if (error instanceof SesApiError) {
          logger.warn('send refused', { errorType: error.errorType, reason: maskAddresses(error.message) });
        }
        if (error instanceof AmbiguousAnswerError) {
          logger.warn('send answer lost (injected)', { answer: error.answer });
          if (error.answer === 'connection-reset') {
            res.destroy();
            return;
          }
          throw new SesApiError('InternalFailure', 'An internal failure occurred (injected).');
        }
        throw error;
      }
      return;
    }
    if (req.method === 'GET' && path === ACCOUNT_PATH) {
      req.resume();
      answer(res, 200, getAccount());
      return;
    }
    req.resume();
    throw new SesApiError(
      'UnknownOperationException',
      `The SES stand-in does not implement ${req.method} ${path}.`,
    );
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const apiError =
        error instanceof SesApiError ? error : new SesApiError('InternalFailure', 'The SES stand-in failed.');
      if (!(error instanceof SesApiError)) {
        logger.error('request failed', { error: error instanceof Error ? error.name : 'unknown' });
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.setHeader('x-amzn-errortype', apiError.errorType);
      answer(res, apiError.statusCode, { message: apiError.message });
    });
  });
  const address = await listenOnLoopback(server, {
    port: requestedPort,
    service: SERVICE,
    envVar: options.portEnvVar ?? LocalPortEnvVar.ses,
  });

  const settled = async (): Promise<void> => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };
  return {
    // Events still waiting would publish into emulators that are stopping too: drop them.
    ...loopbackEmulator(address, async () => {
      stopSignal.abort();
      await closeServer(server);
      await settled();
    }),
    sent: () => [...accepted],
    faultsInjected: () => ({ ...faults.injected }),
    ambiguousAnswers: () => [...faults.ambiguous],
    setFaults: (plan) => {
      const delay = plan.eventDelayMs ?? standinDelayMs;
      if (options.maxEventDelayMs !== undefined && delay > options.maxEventDelayMs) {
        throw new RangeError(
          `FaultPlan: eventDelayMs ${delay} is longer than the ${options.maxEventDelayMs} ms the confirmation window was derived from`,
        );
      }
      faults.plan = plan;
    },
    settled,
  };
};

const answer = (res: ServerResponse, status: number, body: unknown): void => {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(payload);
};

/** Reads the whole body; an oversized one is drained (so the client sees the answer) and refused. */
const readJsonBody = async (req: IncomingMessage): Promise<unknown> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
  }
  if (size > MAX_REQUEST_BYTES) {
    throw new SesApiError(
      'MessageRejected',
      `Message length is more than ${MAX_RAW_MESSAGE_BYTES} bytes long.`,
    );
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new SesApiError('BadRequestException', 'The request body is not valid JSON.');
  }
};

/**
 * Writes the outbox copy with exclusive create, so a second send of the same Baton message (a
 * duplicate, which Baton's send claim exists to prevent) becomes a visible `.dup-` file instead of
 * silently replacing the first.
 */
const writeOutbox = async (
  dir: string,
  id: string,
  sesMessageId: string,
  raw: Buffer,
): Promise<{ file: string; duplicate: boolean }> => {
  const file = join(dir, `${id}.eml`);
  try {
    await writeFile(file, raw, { flag: 'wx' });
    return { file, duplicate: false };
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  const duplicateFile = join(dir, `${id}.dup-${sesMessageId}.eml`);
  await writeFile(duplicateFile, raw, { flag: 'wx' });
  return { file: duplicateFile, duplicate: true };
};

const isVerified = (address: string, verified: readonly string[]): boolean =>
  verified.includes(address.toLowerCase()) || verified.includes(domainOf(address));

/** Fails at start-up on a misspelt event type, which would otherwise mean "this event never arrives". */
const validateDestinations = (destinations: readonly SesEventDestination[]): void => {
  for (const destination of destinations) {
    const unknown = destination.eventTypes.filter((type) => !KNOWN_MATCHING_EVENT_TYPES.has(type));
    if (unknown.length > 0) {
      throw new TypeError(
        `SES stand-in: unknown event type(s) ${unknown.join(', ')} for configuration set ` +
          `${destination.configurationSet}; expected ${[...KNOWN_MATCHING_EVENT_TYPES].join(', ')}`,
      );
    }
  }
};
