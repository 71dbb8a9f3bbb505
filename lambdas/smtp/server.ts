import { createHash } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { addressKey, parseAddrSpec } from '../domain/address.ts';
import { suspendedByGuard, throttleFor } from '../domain/guard/state.ts';
import type { ApiKey } from '../domain/keys/api-key.ts';
import { admitKey, suspendedWords, throttledWords, verifyToken } from '../domain/keys/authenticate.ts';
import { relayKeyFor, sourceMayConnect } from '../domain/keys/relay.ts';
import type { ApiKeyDirectory, ApiKeyReader, IdempotencyStore } from '../domain/ports.ts';
import { fail, type Problem, ProblemError, problem } from '../domain/problem.ts';
import {
  type AcceptDeps,
  type AcceptResult,
  acceptSubmission,
  countRefusedAtRcpt,
  countRejected,
} from '../domain/send/accept.ts';
import { idempotent, type Reply } from '../domain/send/idempotency.ts';
import type { RateLimiter } from '../domain/send/rate-limit.ts';
import { MAX_RECIPIENTS } from '../domain/send/send-request.ts';
import {
  addressRefusal,
  Replies,
  replyForProblem,
  replyText,
  type SmtpReply,
  SmtpReplyError,
  type SmtpStage,
} from '../domain/smtp/replies.ts';
import { checkEnvelopeSender, readSubmission } from '../domain/smtp/submission.ts';
import { isActive, type Suppression } from '../domain/suppression/suppression.ts';
import { TransientError } from '../shared/errors.ts';
import { describeError, logger, metrics } from '../shared/observability.ts';

/**
 * smtp-server puts its own enhanced status code, chosen from the basic code alone, before every
 * reply text; Baton knows the precise one (5.7.1 a policy, 5.1.1 a bad mailbox, 4.7.1 a rate) and
 * writes it first in its texts. A text that starts with an enhanced code is sent as it is.
 */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
const send = SMTPConnection.prototype.send;
SMTPConnection.prototype.send = function sendOwnEnhancedCode(code, data, context) {
  const lines = Array.isArray(data) && authNeedsTls(this) ? data.filter((l) => !l.startsWith('AUTH ')) : data;
  // A command during a drain: Baton's words (retry on a new connection) rather than smtp-server's.
  const text = code === 421 && data === 'Server shutting down' ? replyText(Replies.shuttingDown()) : lines;
  return send.call(this, code, text, typeof text === 'string' && ENHANCED.test(text) ? false : context);
};

/**
 * Whether this session may not AUTH yet: TLS is offered and required for AUTH, and not started.
 * smtp-server answers such an AUTH 538 but lists AUTH in EHLO all the same, so a client set to
 * "no encryption" sends `AUTH PLAIN <its key>` in clear across the internet before it is refused.
 * Its EHLO omits AUTH instead (as Postfix's smtpd_tls_auth_only does; RFC 4954 §4).
 */
function authNeedsTls(connection: SMTPConnection): boolean {
  const options = connection._server.options;
  return !connection.secure && !options.allowInsecureAuth && !options.hideSTARTTLS;
}

export interface SmtpDeps extends AcceptDeps {
  readonly keys: ApiKeyReader;
  /** Every key, for the checks before a caller says who it is (see domain/keys/relay.ts). */
  readonly directory: ApiKeyDirectory;
  readonly rateLimiter: RateLimiter;
  readonly idempotency: IdempotencyStore;
}

export interface SmtpOptions {
  /** The name in the greeting and the EHLO reply. */
  readonly hostname: string;
  /** Largest message accepted, in bytes; advertised in SIZE. */
  readonly maxBytes: number;
  /** The largest send job this entry makes (attachments travel base64 in the job). */
  readonly maxJobBytes: number;
  /**
   * Local mode: AUTH is offered without STARTTLS. Local mode listens on 127.0.0.1 only, so the
   * password never crosses a network in clear text.
   */
  readonly local: boolean;
  /** The TLS certificate and key (PEM); without them STARTTLS and port 465 are not offered. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /** @default 20 */
  readonly maxConnectionsPerSource?: number;
  /** Idle time after which a session is closed with 421. @default 300_000 (RFC 5321 §4.5.3.2) */
  readonly socketTimeoutMs?: number;
  /** How long a closing server lets sessions finish before it ends them with 421. @default 25_000 */
  readonly drainMs?: number;
  /** Failed AUTH attempts from one source address within `authWindowMs` before it is refused. @default 10 */
  readonly maxAuthFailures?: number;
  /** @default 600_000 */
  readonly authWindowMs?: number;
  /**
   * Message bytes the server holds at once, across sessions, from the first byte of DATA to its
   * reply; a message that would go past it is answered 451 (retry). Reading one into a message
   * takes many times its size (a 24 MB body of short lines over 256 MB of heap), so without a
   * bound a few sessions sending large messages together crash the process.
   * @default maxBytes + 4 MiB: one message of any allowed size, or many small ones, at a time.
   */
  readonly maxHeldBytes?: number;
  /**
   * How long a message may take from DATA to its final dot while holding bytes: past it the bytes
   * are let go and the message is answered 451, so a client that sends most of a large message
   * and then trickles cannot keep the bytes others need. @default 600_000 (RFC 5321 §4.5.3.2.6)
   */
  readonly dataTimeoutMs?: number;
}

/** What Baton knows of one SMTP connection beyond what smtp-server keeps. */
interface Connection {
  readonly ip: string;
  /** The key that AUTH proved, or the one that relays for this network without AUTH. */
  key?: ApiKey;
  /** This transaction's recipients refused as suppressed (addressKey → suppression). */
  refused: Map<string, Suppression>;
  /** Recipients this transaction accepted. */
  accepted: number;
  /** Whether this transaction's DATA was answered (so its refusals are already counted). */
  answered: boolean;
}

/**
 * The SMTP front door: the same keys, checks and accept path as the HTTPS api, spoken as SMTP
 * submission (RFC 6409). Every refusal is a reply a legacy client understands (a basic code, an
 * enhanced code and words); a message is answered 250 only once it is recorded and queued.
 */
export class BatonSmtp {
  readonly #deps: SmtpDeps;
  readonly #options: Required<Omit<SmtpOptions, 'tls'>> & Pick<SmtpOptions, 'tls'>;
  readonly #connections = new Map<string, Connection>();
  readonly #perSource = new Map<string, number>();
  readonly #authFailures = new Map<string, { count: number; since: number }>();
  readonly #servers: SMTPServer[] = [];
  #draining = false;
  readonly #metricsTimer: NodeJS.Timeout;
  /** Bytes of the messages being read or processed now (see SmtpOptions.maxHeldBytes). */
  #heldBytes = 0;
  /** Messages read in full and being recorded: a drain answers them before it closes sessions. */
  readonly #recording = new Set<Promise<unknown>>();

  constructor(deps: SmtpDeps, options: SmtpOptions) {
    this.#deps = deps;
    this.#options = {
      maxConnectionsPerSource: 20,
      socketTimeoutMs: 300_000,
      drainMs: 25_000,
      maxAuthFailures: 10,
      authWindowMs: 600_000,
      maxHeldBytes: options.maxBytes + 4 * 1024 * 1024,
      dataTimeoutMs: 600_000,
      ...options,
    };
    this.#metricsTimer = setInterval(flushCounts, METRICS_FLUSH_MS);
    this.#metricsTimer.unref();
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** A server for one port: STARTTLS on a submission port, or TLS from the first byte (465). */
  createServer(implicitTls: boolean): SMTPServer {
    const o = this.#options;
    const tls = o.tls;
    if (implicitTls && !tls) throw new Error('implicit TLS needs a certificate');
    const server = new SMTPServer({
      name: o.hostname,
      banner: 'Baton SMTP relay ready',
      secure: implicitTls,
      ...(tls ? { key: tls.key, cert: tls.cert } : {}),
      hideSTARTTLS: !tls,
      size: o.maxBytes,
      authMethods: ['PLAIN', 'LOGIN'],
      // A key may relay for its networks without AUTH; MAIL FROM answers 530 when no key applies.
      authOptional: true,
      allowInsecureAuth: o.local,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      hideREQUIRETLS: true,
      disableReverseLookup: true,
      socketTimeout: o.socketTimeoutMs,
      // drain() closes the sessions itself at drainMs; this is only the backstop after it.
      closeTimeout: o.drainMs + BACKSTOP_MS,
      logger: false,
      onConnect: (session, callback) => this.#run('connect', callback, () => this.#onConnect(session)),
      onAuth: (auth, session, callback) =>
        this.#onAuth(auth, session).then(
          (user) => callback(null, { user }),
          (error: unknown) => callback(this.#refusal(error, 'auth')),
        ),
      onMailFrom: (address, session, callback) =>
        this.#run('mail', callback, () => this.#onMailFrom(address, session)),
      onRcptTo: (address, session, callback) =>
        this.#run('rcpt', callback, () => this.#onRcptTo(address, session)),
      onData: (stream, session, callback) => {
        this.#onData(stream, session).then(
          (reply) => callback(null, replyText(reply)),
          (error: unknown) => callback(this.#refusal(error, 'data')),
        );
      },
      onClose: (session) => this.#onClose(session),
    });
    server.on('error', (error) => logger.warn('smtp connection error', describeError(error)));
    if (implicitTls) this.#limitHandshakes(server);
    this.#servers.push(server);
    return server;
  }

  /**
   * On the implicit-TLS port a socket becomes a session (and meets onConnect's per-source limit)
   * only once its handshake is done, and smtp-server gives a handshake the whole idle timeout:
   * one source could hold any number of unfinished handshakes for five minutes each. Its sockets
   * are counted from accept to close; one over the limit is closed before smtp-server sees it
   * (nothing can be said to it before TLS is up).
   */
  #limitHandshakes(server: SMTPServer): void {
    const raw = server.server;
    const accept = raw.listeners('connection');
    raw.removeAllListeners('connection');
    const open = new Map<string, number>();
    raw.on('connection', (socket: Socket) => {
      const ip = normaliseIp(socket.remoteAddress ?? '');
      const now = open.get(ip) ?? 0;
      if (now >= this.#options.maxConnectionsPerSource) {
        count('smtpRefusals', 'connections');
        socket.destroy();
        return;
      }
      open.set(ip, now + 1);
      socket.once('close', () => {
        const left = (open.get(ip) ?? 1) - 1;
        if (left <= 0) open.delete(ip);
        else open.set(ip, left);
      });
      for (const listener of accept) listener.call(raw, socket);
    });
  }

  /** Swaps the certificate (a renewal) for new connections; sessions keep the one they have. */
  updateCertificate(tls: { readonly key: string | Buffer; readonly cert: string | Buffer }): void {
    for (const server of this.#servers) server.updateSecureContext({ key: tls.key, cert: tls.cert });
  }

  /**
   * Stops taking connections; commands of open sessions get 421 (smtp-server), a DATA in flight
   * still finishes and is answered; after `drainMs` the rest are closed with 421. A message being
   * recorded then is answered first: closing its session before its 250 would have the client
   * send again a message that is queued (and without a Message-ID, nothing recognises the resend).
   */
  async drain(): Promise<void> {
    this.#draining = true;
    const closed = Promise.all(
      this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
    );
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      closed.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), this.#options.drainMs);
      }),
    ]);
    clearTimeout(timer);
    if (late) {
      await Promise.allSettled([...this.#recording]);
      for (const server of this.#servers) {
        for (const connection of server.connections) {
          connection.send(421, replyText(Replies.shuttingDown()));
          connection.close();
        }
      }
      await closed;
    }
    clearInterval(this.#metricsTimer);
    flushCounts();
  }

  async #onConnect(session: SMTPServerSession): Promise<void> {
    const ip = sourceAddress(session);
    if (this.#draining) throw new SmtpReplyError(Replies.shuttingDown());
    const open = this.#perSource.get(ip) ?? 0;
    if (open >= this.#options.maxConnectionsPerSource) {
      count('smtpRefusals', 'connections');
      throw new SmtpReplyError(Replies.tooManyConnections(this.#options.maxConnectionsPerSource));
    }
    // Counted before the key list is read: connections that arrive while it is read (a cache
    // miss) must each see the others, or a burst from one source passes the limit all together.
    const connection: Connection = {
      ip,
      refused: new Map(),
      accepted: 0,
      answered: false,
    };
    this.#perSource.set(ip, open + 1);
    this.#connections.set(session.id, connection);
    try {
      const keys = await this.#deps.directory.list();
      if (!sourceMayConnect(ip, keys)) {
        count('smtpRefusals', 'source');
        logger.info('smtp connection refused', { reason: 'source', source: ip });
        throw new SmtpReplyError(Replies.sourceRefused(ip));
      }
      const relay = relayKeyFor(ip, keys);
      if (relay) connection.key = relay;
      // Failed logins shut the source out, but not the devices a key relays for without AUTH:
      // anyone sharing their address could otherwise keep them out for good. Its AUTH attempts
      // are still refused (#onAuth).
      const throttled = relay ? 0 : this.#authThrottle(ip);
      if (throttled > 0) {
        count('smtpRefusals', 'auth_throttled');
        throw new SmtpReplyError(Replies.authThrottled(throttled));
      }
    } catch (error) {
      this.#release(session);
      throw error;
    }
    count('smtpConnections');
  }

  async #onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<string> {
    const connection = this.#connection(session);
    const throttled = this.#authThrottle(connection.ip);
    if (throttled > 0) throw new SmtpReplyError(Replies.authThrottled(throttled));
    try {
      // The password is the API key; the user name is free (many clients insist on one).
      if (!auth.password) {
        fail('unauthorized', 'AUTH needs your Baton API key as the password (the user name is free).');
      }
      const key = await verifyToken(this.#deps.keys, auth.password, connection.ip, ['send']);
      connection.key = key;
      logger.info('smtp authenticated', { keyId: key.keyId, tenant: key.tenant, method: auth.method });
      return key.keyId;
    } catch (error) {
      if (error instanceof ProblemError) this.#authFailed(connection.ip, auth.method, error);
      throw error;
    }
  }

  async #onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const connection = this.#connection(session);
    await this.#endTransaction(connection);
    if (!connection.key) {
      count('smtpRefusals', 'auth_required');
      throw new SmtpReplyError(Replies.authRequired(session.secure || !this.#options.tls));
    }
    const current = await this.#currentKey(connection, connection.key);
    this.#refuseThrottled(current);
    if (current.rateLimit !== undefined) {
      const taken = this.#deps.rateLimiter.take(current.keyId, current.rateLimit);
      if (!taken.ok) {
        count('smtpRefusals', 'rate');
        throw new SmtpReplyError({
          code: 451,
          enhanced: '4.7.1',
          text: `This API key may send ${current.rateLimit} messages per second; retry in ${taken.retryAfterSeconds} s`,
        });
      }
    }
    if (address.address === '') throw new SmtpReplyError(Replies.nullSender());
    const parsed = parseAddrSpec(address.address);
    if (!parsed.ok) throw new SmtpReplyError(addressRefusal(parsed.message, Replies.senderSyntax));
    checkEnvelopeSender(current, parsed.value);
  }

  async #onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const connection = this.#connection(session);
    const key = connection.key;
    if (!key) throw new SmtpReplyError(Replies.authRequired(session.secure));
    const parsed = parseAddrSpec(address.address);
    if (!parsed.ok) throw new SmtpReplyError(addressRefusal(parsed.message, Replies.recipientSyntax));
    const normalised = addressKey(parsed.value);
    const already = session.envelope.rcptTo.filter((r) => addressKey(r.address) !== normalised).length;
    if (already + connection.refused.size >= MAX_RECIPIENTS) {
      throw new SmtpReplyError(Replies.tooManyRecipients(MAX_RECIPIENTS));
    }
    const found = await this.#deps.suppressions.getMany([normalised], key.tenant);
    const suppression = found.get(normalised);
    if (suppression && isActive(suppression, this.#deps.clock())) {
      connection.refused.set(normalised, suppression);
      count('smtpRefusals', 'suppressed');
      throw new SmtpReplyError(Replies.suppressed(parsed.value, suppression.reason));
    }
    connection.accepted += 1;
  }

  async #onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<SmtpReply> {
    let held = 0;
    let late = false;
    const deadline = Date.now() + this.#options.dataTimeoutMs;
    const holder: Holder = {
      take: (bytes) => {
        late = Date.now() > deadline;
        if (late || this.#heldBytes + bytes > this.#options.maxHeldBytes) return false;
        this.#heldBytes += bytes;
        held += bytes;
        return true;
      },
      drop: () => {
        this.#heldBytes -= held;
        held = 0;
      },
    };
    try {
      const { bytes, complete } = await readData(stream, holder);
      if (!complete && late && !stream.sizeExceeded) {
        count('smtpRefusals', 'slow');
        throw new SmtpReplyError(Replies.tooSlow(this.#options.dataTimeoutMs));
      }
      const recorded = this.#onMessage(stream, session, bytes, complete);
      // Until its reply is written (the callback runs after this settles).
      const answered = recorded.then(
        () => tick(),
        () => tick(),
      );
      this.#recording.add(answered);
      void answered.then(() => this.#recording.delete(answered));
      return await recorded;
    } finally {
      holder.drop();
    }
  }

  async #onMessage(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    raw: Buffer,
    complete: boolean,
  ): Promise<SmtpReply> {
    const connection = this.#connection(session);
    if (!connection.key) throw new SmtpReplyError(Replies.authRequired(session.secure));
    if (stream.sizeExceeded) throw new SmtpReplyError(Replies.tooLarge(this.#options.maxBytes));
    if (!complete) {
      count('smtpRefusals', 'busy');
      throw new SmtpReplyError(Replies.busy());
    }
    // Again at the end of DATA: a transaction may stay open for long (NOOP keeps it alive), and a
    // key shut off meanwhile must not get one more message through.
    const key = await this.#currentKey(connection, connection.key);
    // A throttle that started since MAIL FROM: the message is not taken, the client retries it.
    this.#refuseThrottled(key);
    const envelope = {
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
    };
    connection.answered = true;
    const message = await readSubmission(raw, envelope).catch(async (error: unknown) => {
      // Reading is pure (no table, no queue): what fails there is the message, and a 451 would
      // have the client retry it forever. The parser's own words say what it could not take.
      const refused =
        error instanceof ProblemError
          ? error
          : new ProblemError(
              problem(
                'invalid_message',
                `the message could not be read as MIME (${error instanceof Error ? error.message.slice(0, 200) : 'unknown error'})`,
              ),
            );
      // Counted as a refused message in the tenant's stats, as a refused HTTPS body is (and,
      // refused by the content checks, for the abuse guard per recipient).
      await countRejected(this.#deps, key, refused.problem, envelope.rcptTo);
      throw refused;
    });
    // A client that lost our 250 (a dropped connection after DATA) sends the same message again:
    // the same Message-ID, envelope and bytes are recorded once and answered with the first id.
    const run = async (): Promise<Reply> => ({
      status: 250,
      body: await acceptSubmission(this.#deps, key, message, {
        maxJobBytes: this.#options.maxJobBytes,
        suppressedAtRcpt: connection.refused,
      }),
    });
    const messageId = message.messageId;
    const reply = messageId
      ? await idempotent(
          { store: this.#deps.idempotency, clock: this.#deps.clock, lockMs: RECORDING_LOCK_MS },
          { tenant: key.tenant, route: 'smtp', key: resendDigest(messageId, envelope, raw), body: {} },
          run,
        )
      : await run();
    // A resend of a message refused for good is refused again in the same words (the refusal is
    // what was kept), never read as an accepted one.
    if (reply.status !== 250) throw new ProblemError(reply.body as Problem);
    const result = reply.body as AcceptResult;
    count('smtpMessagesAccepted');
    logger.info('smtp message accepted', {
      messageId: result.id,
      keyId: key.keyId,
      recipients: result.recipients.length,
      bytes: raw.length,
      ...(reply.replayed ? { replayed: true } : {}),
    });
    if (result.status === 'held') return Replies.recordedHeld(result.id);
    return result.status === 'suppressed' ? Replies.recordedSuppressed(result.id) : Replies.queued(result.id);
  }

  #onClose(session: SMTPServerSession): void {
    const connection = this.#release(session);
    if (connection) void this.#endTransaction(connection);
  }

  /** Forgets a session and frees its source's slot, once (a refusal at connect, then its close). */
  #release(session: SMTPServerSession): Connection | undefined {
    const connection = this.#connections.get(session.id);
    if (!connection) return undefined;
    this.#connections.delete(session.id);
    const open = (this.#perSource.get(connection.ip) ?? 1) - 1;
    if (open <= 0) this.#perSource.delete(connection.ip);
    else this.#perSource.set(connection.ip, open);
    return connection;
  }

  /**
   * A transaction whose every recipient was refused as suppressed never reaches DATA, yet over
   * HTTPS the same message would count as one suppressed message in the tenant's stats, and a
   * suppressed-recipient hit per address for the abuse guard.
   */
  async #endTransaction(connection: Connection): Promise<void> {
    const refusedAll = connection.refused.size > 0 && connection.accepted === 0 && !connection.answered;
    const key = connection.key;
    const refused = [...connection.refused.keys()];
    connection.refused = new Map();
    connection.accepted = 0;
    connection.answered = false;
    if (refusedAll && key) {
      // A lost count is not worth refusing the next MAIL over, nor (from onClose, where nothing
      // awaits it) an unhandled rejection that would end the process and every session in it.
      await countRefusedAtRcpt(this.#deps, key, refused).catch((error: unknown) =>
        logger.warn('smtp stats write failed', describeError(error)),
      );
    }
  }

  /**
   * The connection's key as it is now (re-read, cached at most 60 s), still admitted: a key
   * suspended or revoked mid-session, or its CIDRs narrowed, stops the next step.
   */
  async #currentKey(connection: Connection, key: ApiKey): Promise<ApiKey> {
    const current = await this.#deps.keys.get(key.keyId);
    if (!current)
      throw new SmtpReplyError(replyForProblem(problem('unauthorized', 'The API key is not valid.'), 'auth'));
    // The abuse guard's suspension is said in its own words and code (554 5.7.1), not as a sender refusal.
    if (suspendedByGuard(current) !== undefined) {
      count('smtpRefusals', 'guard_suspended');
      throw new SmtpReplyError(Replies.guardSuspended(suspendedWords(current)));
    }
    admitKey(current, connection.ip, ['send']);
    connection.key = current;
    return current;
  }

  /** The abuse guard's throttle of the key, in force now: 451 4.7.1 with when to retry. */
  #refuseThrottled(key: ApiKey): void {
    const now = this.#deps.clock();
    const throttle = throttleFor(key.guard, now);
    if (throttle === undefined) return;
    count('smtpRefusals', 'guard_throttled');
    throw new SmtpReplyError(Replies.guardThrottled(throttledWords(throttle, now)));
  }

  #connection(session: SMTPServerSession): Connection {
    const found = this.#connections.get(session.id);
    // onConnect always runs first; a session without one was refused there.
    if (!found) throw new SmtpReplyError(Replies.shuttingDown());
    return found;
  }

  /** Seconds the source must still wait before it may try AUTH again; 0 when it may. */
  #authThrottle(ip: string): number {
    const entry = this.#authFailures.get(ip);
    if (!entry) return 0;
    const left = entry.since + this.#options.authWindowMs - Date.now();
    if (left <= 0) {
      this.#authFailures.delete(ip);
      return 0;
    }
    return entry.count >= this.#options.maxAuthFailures ? Math.ceil(left / 1000) : 0;
  }

  #authFailed(ip: string, method: string, error: ProblemError): void {
    const now = Date.now();
    const entry = this.#authFailures.get(ip);
    const fresh = !entry || entry.since + this.#options.authWindowMs <= now;
    this.#authFailures.set(
      ip,
      fresh ? { count: 1, since: now } : { count: entry.count + 1, since: entry.since },
    );
    // Bounded: the oldest sources are forgotten first (a Map iterates in insertion order).
    if (this.#authFailures.size > 10_000) {
      const oldest = this.#authFailures.keys().next().value;
      if (oldest !== undefined) this.#authFailures.delete(oldest);
    }
    count('smtpAuthFailures');
    // Never the password, nor the user name (some clients put the key there).
    logger.warn('smtp authentication failed', { source: ip, method, reason: error.problem.code });
  }

  #run(stage: SmtpStage, callback: (error?: Error | null) => void, step: () => Promise<void>): void {
    step().then(
      () => callback(),
      (error: unknown) => callback(this.#refusal(error, stage)),
    );
  }

  /** Any failure as the reply for its step; what is not a refusal of ours is a 4xx to retry. */
  #refusal(error: unknown, stage: SmtpStage): SmtpReplyError {
    let reply: SmtpReply;
    if (error instanceof SmtpReplyError) return countReply(error);
    if (error instanceof ClientLeftError) {
      // Nobody is left to answer: no reply counted, and no error (a dropped client is not Baton's).
      logger.info('smtp client left during DATA', { bytes: error.bytes });
      return new SmtpReplyError(Replies.unavailable());
    }
    if (error instanceof ProblemError) reply = replyForProblem(error.problem, stage);
    else {
      if (error instanceof TransientError)
        logger.warn('smtp step unavailable', { stage, ...describeError(error) });
      else logger.error('smtp step failed', { stage, ...describeError(error) });
      reply = stage === 'connect' ? UNAVAILABLE_AT_CONNECT : Replies.unavailable();
    }
    // smtp-server closes the connection after any refusal at connect; a 4xx that closes is 421
    // (RFC 5321 §3.8), the one temporary code a client expects to end the session.
    if (stage === 'connect' && reply.code >= 400 && reply.code < 500) reply = { ...reply, code: 421 };
    if (reply.code >= 500 && stage !== 'auth') count('smtpRefusals', refusalReason(reply));
    return countReply(new SmtpReplyError(reply));
  }
}

const UNAVAILABLE_AT_CONNECT: SmtpReply = {
  code: 421,
  enhanced: '4.3.0',
  text: 'Baton cannot read its API keys just now (a table is unavailable); closing, retry in a minute',
};
/**
 * How long recording a message may take before a resend of it is taken for the resend of a lost
 * one (the first server died): nothing bounds a session's work as a function timeout bounds the
 * api's, and a slow queue must not have both copies recorded. A resend meanwhile gets 451.
 */
const RECORDING_LOCK_MS = 10 * 60_000;

/** How long after drainMs smtp-server ends sessions itself, should a message take that long. */
const BACKSTOP_MS = 60_000;

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function countReply(error: SmtpReplyError): SmtpReplyError {
  count(error.responseCode >= 500 ? 'smtpReplies5xx' : 'smtpReplies4xx');
  return error;
}

function refusalReason(reply: SmtpReply): string {
  if (reply.code === 552) return 'size';
  if (reply.code === 554) return 'content';
  if (reply.code === 550 || reply.code === 553) return 'sender';
  return 'other';
}

/** Counts since the last flush, by metric name and `reason` (empty: no reason dimension). */
const counted = new Map<string, Map<string, number>>();

/**
 * Counts one event. Written out in one batch every {@link METRICS_FLUSH_MS} (and at drain), not one
 * EMF log line per event: a client pipelining 10,000 refused commands must not write 10,000 lines.
 */
function count(name: string, reason = ''): void {
  const byReason = counted.get(name) ?? new Map<string, number>();
  byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
  counted.set(name, byReason);
}

/** CloudWatch keeps one-minute points: a few seconds of delay loses nothing. */
export const METRICS_FLUSH_MS = 10_000;

/** Writes what was counted: one line for the plain counters, one per metric and reason. */
export function flushCounts(): void {
  for (const [name, byReason] of counted) {
    for (const [reason, n] of byReason) {
      if (reason === '') {
        metrics.addMetric(name, MetricUnit.Count, n);
      } else {
        const single = metrics.singleMetric();
        single.addDimension('reason', reason);
        single.addMetric(name, MetricUnit.Count, n);
      }
    }
  }
  counted.clear();
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}

function sourceAddress(session: SMTPServerSession): string {
  return normaliseIp(session.remoteAddress);
}

/** The client's address as the key CIDRs see it: an IPv4-mapped IPv6 address is its IPv4 one. */
function normaliseIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped?.[1] && isIP(mapped[1]) === 4 ? mapped[1] : ip;
}

/** Grants the bytes a message may hold while it is read (see SmtpOptions.maxHeldBytes). */
export interface Holder {
  /** Whether `bytes` more may be held. */
  take(bytes: number): boolean;
  /** Lets go of every byte taken. */
  drop(): void;
}

const HOLD_ANY: Holder = { take: () => true, drop: () => undefined };

/**
 * The message of one DATA: at most SIZE bytes of it (the server answers 552 past that), and only
 * while `holder` grants its bytes; when it does not, what was kept is let go and `complete` is
 * false (the rest is read and dropped).
 */
export async function readData(
  stream: SMTPServerDataStream,
  holder: Holder = HOLD_ANY,
): Promise<{ bytes: Buffer; complete: boolean }> {
  const chunks: Buffer[] = [];
  let complete = true;
  // A client that disconnects mid-DATA destroys the stream with an error: nothing is accepted.
  // smtp-server only flags a message over SIZE and writes on: what comes after is read and
  // dropped, or a client could make the server hold any amount (552 is answered either way).
  let received = 0;
  try {
    for await (const chunk of stream) {
      const data = chunk as Buffer;
      received += data.length;
      if (stream.sizeExceeded || !complete) continue;
      if (holder.take(data.length)) chunks.push(data);
      else {
        complete = false;
        chunks.length = 0;
        holder.drop();
      }
    }
  } catch (error) {
    // smtp-server destroys the stream with an error only when the client disconnects mid-DATA.
    throw new ClientLeftError(received, error);
  }
  return { bytes: Buffer.concat(chunks), complete };
}

/** The client disconnected before the end of DATA. */
class ClientLeftError extends Error {
  override readonly name = 'ClientLeftError';
  readonly bytes: number;

  constructor(bytes: number, cause: unknown) {
    super(`the client left after ${bytes} bytes of DATA`, { cause });
    this.bytes = bytes;
  }
}

function resendDigest(
  messageId: string,
  envelope: { mailFrom: string; rcptTo: readonly string[] },
  raw: Buffer,
): string {
  return createHash('sha256')
    .update(messageId)
    .update('\u0000')
    .update(JSON.stringify(envelope))
    .update('\u0000')
    .update(raw)
    .digest('base64url');
}
