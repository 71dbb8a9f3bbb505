/**
 * A nodemailer transport that sends through Baton's HTTP API:
 *
 *   import nodemailer from 'nodemailer';
 *   import { batonTransport } from '@baton/nodemailer-transport';
 *   const transporter = nodemailer.createTransport(batonTransport({ url, apiKey }));
 *
 * nodemailer builds the message as it would for SMTP; the transport posts that MIME, base64, to
 * `POST /v1/messages` in its raw form (`{"raw": ..., "envelope": {"from", "to"}}`), so everything
 * nodemailer can express (attachments, embedded images, alternatives, custom headers) reaches Baton
 * as it was built, and Baton applies the rules it applies to every message.
 *
 * Plain JavaScript on purpose: Node refuses to strip TypeScript types under node_modules, and
 * the package has no build step. Types are in index.d.ts. No runtime dependencies.
 */
import { createHash } from 'node:crypto';

const NAME = 'Baton';
const VERSION = '0.1.0';

const DEFAULTS = {
  retries: 3,
  timeout: 30_000,
  retryDelay: 500,
  maxRetryDelay: 30_000,
};

/** Idempotency-Key: 1 to 255 printable ASCII characters (Baton's rule). */
const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;

/**
 * The transport nodemailer's `createTransport` takes.
 *
 * @param {import('./index.js').BatonTransportOptions} options
 * @returns {import('./index.js').BatonTransport}
 */
export function batonTransport(options) {
  return new BatonTransport(options);
}

/** Baton's problem (RFC 9457) as an Error nodemailer passes to the sendMail callback. */
export class BatonError extends Error {
  /**
   * @param {string} message
   * @param {{code: string, responseCode?: number, detail?: string, errors?: Array<{path: string, message: string}>, problem?: object, retryAfter?: number, cause?: unknown}} fields
   */
  constructor(message, fields) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'BatonError';
    this.code = fields.code;
    if (fields.responseCode !== undefined) {
      this.responseCode = fields.responseCode;
      this.response = `${fields.responseCode} ${fields.code}: ${message}`;
    }
    if (fields.detail !== undefined) this.detail = fields.detail;
    if (fields.errors !== undefined) this.errors = fields.errors;
    if (fields.problem !== undefined) this.problem = fields.problem;
    if (fields.retryAfter !== undefined) this.retryAfter = fields.retryAfter;
  }
}

export class BatonTransport {
  /** @param {import('./index.js').BatonTransportOptions} options */
  constructor(options) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError('batonTransport: pass { url, apiKey }');
    }
    const { url, apiKey } = options;
    // The API's paths are appended to it: a query or fragment would end up in front of them. fetch
    // refuses a URL with credentials, which would pass for Baton being unreachable.
    const parsed =
      typeof url === 'string' && /^https?:\/\//i.test(url) && URL.canParse(url) ? new URL(url) : undefined;
    if (parsed === undefined || /[?#]/.test(url) || parsed.username !== '' || parsed.password !== '') {
      throw new TypeError(
        'batonTransport: url must be Baton’s base URL, e.g. http://127.0.0.1:3000 (no query, fragment or credentials)',
      );
    }
    if (typeof apiKey !== 'string' || apiKey === '') {
      throw new TypeError('batonTransport: apiKey is required');
    }
    const known = new Set(['url', 'apiKey', 'retries', 'timeout', 'retryDelay', 'maxRetryDelay', 'fetch']);
    const unknown = Object.keys(options).filter((k) => !known.has(k));
    // A typo (`retry: 5`) would otherwise be ignored without a word.
    if (unknown.length > 0) throw new TypeError(`batonTransport: unknown option ${unknown.join(', ')}`);
    checkNumber(
      options.retries,
      'retries',
      (v) => Number.isInteger(v) && v >= 0,
      'a whole number of 0 or more',
    );
    checkNumber(options.timeout, 'timeout', (v) => Number.isFinite(v) && v > 0, 'a number of ms above 0');
    checkNumber(options.retryDelay, 'retryDelay', (v) => v >= 0, 'a number of ms of 0 or more');
    checkNumber(options.maxRetryDelay, 'maxRetryDelay', (v) => v >= 0, 'a number of ms of 0 or more');
    if (options.fetch !== undefined && typeof options.fetch !== 'function') {
      throw new TypeError('batonTransport: fetch must be a function');
    }
    this.name = NAME;
    this.version = VERSION;
    // nodemailer hands mail.data.signal over once send() is called; send() honours it.
    this.supportsAbortSignal = true;
    this.options = {
      ...DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    };
    this.baseUrl = url.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /**
   * nodemailer's transport contract: `send(mail, callback)`, mail.message being the compiled
   * MimeNode. The callback gets `(error)` or `(null, info)`.
   */
  send(mail, callback) {
    this.#send(mail).then(
      (info) => callback(null, info),
      (error) => callback(error),
    );
  }

  /**
   * Proves the URL and key work: `GET /v1/reputation` with the key (any key that can read).
   * With a callback it is called `(error)` or `(null, true)`; without, a promise resolving true.
   */
  verify(callback) {
    const promise = this.#request('GET', '/v1/reputation', undefined, {}, undefined).then(() => true);
    if (typeof callback !== 'function') return promise;
    promise.then(
      (ok) => callback(null, ok),
      (error) => callback(error),
    );
    return undefined;
  }

  /** Nothing to close: every request is its own (fetch keeps its own connection pool). */
  close() {}

  /** Always ready: there is no connection pool to wait for. */
  isIdle() {
    return true;
  }

  async #send(mail) {
    const message = mail.message;
    // Created (and written into the message) when the app set none, so it is in the MIME too.
    message.messageId();
    const envelope = message.getEnvelope();
    // keepBcc stays false: the Bcc header is left out of the MIME; its recipients are in the envelope.
    const raw = await new Promise((resolve, reject) => {
      message.build((error, built) => (error ? reject(error) : resolve(built)));
    });
    // Read from the bytes sent: a message the app hands over raw keeps its own Message-ID (the one
    // nodemailer would make up for it is not in those bytes, and is new on every send).
    const messageId = messageIdIn(raw);
    const to = [...(envelope.to ?? [])];
    const body = {
      raw: raw.toString('base64'),
      envelope: {
        ...(typeof envelope.from === 'string' && envelope.from !== '' ? { from: envelope.from } : {}),
        to,
      },
    };
    const answer = await this.#request(
      'POST',
      '/v1/messages',
      JSON.stringify(body),
      {
        'content-type': 'application/json',
        'idempotency-key': messageId === undefined ? `sha256:${sha256(raw)}` : idempotencyKey(messageId),
      },
      mail.data?.signal,
    );
    if (typeof answer.body.id !== 'string') throw notBaton(answer.status, this.baseUrl);
    const recipients = Array.isArray(answer.body?.recipients) ? answer.body.recipients : [];
    const having = (status) => recipients.filter((r) => r.status === status).map((r) => r.address);
    return {
      messageId: answer.body.id,
      envelope: { from: envelope.from, to },
      accepted: having('queued'),
      rejected: having('suppressed'),
      pending: having('held'),
      response: `${answer.status} ${answer.body.status} ${answer.body.id}`,
      baton: answer.body,
    };
  }

  /**
   * One API call with retries: network errors, timeouts, 429, 409 idempotency_in_progress and
   * 5xx (501 aside) are tried again, up to `retries` more times, after an exponential backoff with
   * full jitter, or the Retry-After Baton sent. A Retry-After longer than `maxRetryDelay` (a daily
   * quota that is used up) is not waited for: the error is returned with `retryAfter`.
   */
  async #request(method, path, body, headers, signal) {
    const { retries, timeout, retryDelay, maxRetryDelay } = this.options;
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      let outcome;
      try {
        outcome = await this.#attempt(method, path, body, headers, signal, timeout);
      } catch (error) {
        if (signal?.aborted) throw error;
        outcome = { retry: true, error, wait: undefined };
      }
      if (!outcome.retry && outcome.error === undefined) return outcome;
      const error = outcome.error;
      if (!outcome.retry || attempt >= retries) throw error;
      const backoff = Math.random() * Math.min(maxRetryDelay, retryDelay * 2 ** attempt);
      const wait = outcome.wait ?? backoff;
      if (wait > maxRetryDelay) throw error;
      await sleep(wait, signal);
    }
  }

  async #attempt(method, path, body, headers, signal, timeout) {
    const timer = AbortSignal.timeout(timeout);
    let response;
    try {
      response = await this.fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { accept: 'application/json', authorization: `Bearer ${this.options.apiKey}`, ...headers },
        ...(body === undefined ? {} : { body }),
        signal: signal ? AbortSignal.any([signal, timer]) : timer,
      });
    } catch (cause) {
      if (signal?.aborted) throw cause;
      const timedOut = timer.aborted;
      return {
        retry: true,
        error: new BatonError(
          timedOut
            ? `Baton did not answer within ${timeout} ms`
            : `Baton could not be reached at ${this.baseUrl}: ${cause?.cause?.code ?? cause?.message ?? cause}`,
          { code: timedOut ? 'ETIMEDOUT' : 'ECONNECTION', cause },
        ),
      };
    }
    const text = await response.text();
    let parsed;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.ok) {
      // Another server at the URL (a web page, a proxy's welcome) must not pass for Baton's yes.
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return { retry: false, error: notBaton(response.status, this.baseUrl) };
      }
      return { retry: false, status: response.status, body: parsed };
    }
    const retryAfter = retryAfterMs(response.headers.get('retry-after'));
    const problem = parsed !== null && typeof parsed === 'object' ? parsed : undefined;
    // API Gateway refuses a body over its limit itself, in its own words: the same refusal as Baton's.
    const code =
      typeof problem?.code === 'string'
        ? problem.code
        : response.status === 413
          ? 'too_large'
          : `http_${response.status}`;
    const detail =
      typeof problem?.detail === 'string'
        ? problem.detail
        : `Baton answered ${response.status} ${response.statusText}`;
    const error = new BatonError(detail, {
      code,
      responseCode: response.status,
      detail,
      ...(Array.isArray(problem?.errors) ? { errors: problem.errors } : {}),
      ...(problem ? { problem } : {}),
      ...(retryAfter === undefined ? {} : { retryAfter: retryAfter / 1000 }),
    });
    const retry =
      response.status === 429 ||
      (response.status >= 500 && response.status !== 501) ||
      code === 'idempotency_in_progress';
    return { retry, error, wait: retryAfter };
  }
}

/** A 2xx answer that is not Baton's JSON: the URL points at another server. */
function notBaton(status, baseUrl) {
  return new BatonError(`The answer from ${baseUrl} is not Baton’s API (HTTP ${status}); check url`, {
    code: 'EPROTOCOL',
    responseCode: status,
  });
}

/**
 * The Message-ID as Baton's Idempotency-Key: the same message sent again (a retry, or the app
 * sending it twice after a crash) is queued once. A Message-ID Baton would not take as a key (over
 * 255 characters, or not ASCII) is sent as its SHA-256, which is as stable.
 */
function idempotencyKey(messageId) {
  return KEY_FORMAT.test(messageId) ? messageId : `sha256:${sha256(messageId)}`;
}

function sha256(data) {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The Message-ID header of a built message (its header block, folded lines unfolded); undefined
 * when it has none. Without one, the key is the SHA-256 of the bytes: the same message sent again
 * is the same bytes.
 */
function messageIdIn(raw) {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n(?=[ \t])/g, '');
  const value = /^message-id[ \t]*:(.*)$/im.exec(head)?.[1]?.trim();
  return value ? Buffer.from(value, 'latin1').toString('utf8') : undefined;
}

function checkNumber(value, name, ok, what) {
  if (value === undefined) return;
  if (typeof value !== 'number' || Number.isNaN(value) || !ok(value)) {
    throw new TypeError(`batonTransport: ${name} must be ${what}`);
  }
}

/** Retry-After in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
function retryAfterMs(value) {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    // An abort that came before the wait began fires no event: it would be waited out.
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', aborted);
      resolve();
    }
    function aborted() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
