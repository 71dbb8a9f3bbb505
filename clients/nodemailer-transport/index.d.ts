import type { Transport } from 'nodemailer';

export interface BatonTransportOptions {
  /** Baton's base URL: `http://127.0.0.1:3000` in local mode, the API's URL once deployed. */
  readonly url: string;
  /** An API key with the `send` scope (`verify()` needs `read` too). */
  readonly apiKey: string;
  /** How many times a request is tried again after a network error, a timeout, 429 or 5xx. @default 3 */
  readonly retries?: number;
  /** How long one attempt may take, in ms. @default 30000 */
  readonly timeout?: number;
  /** The backoff's base in ms: attempt n waits a random time up to retryDelay × 2^n. @default 500 */
  readonly retryDelay?: number;
  /** The longest wait between attempts, in ms; a longer Retry-After fails at once. @default 30000 */
  readonly maxRetryDelay?: number;
  /** The fetch to use (tests, proxies). @default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch;
}

/** One recipient in Baton's answer. */
export interface BatonRecipient {
  readonly address: string;
  readonly status: 'queued' | 'held' | 'suppressed';
  readonly reason?: string;
}

/** Baton's 202 answer to `POST /v1/messages`. */
export interface BatonAccepted {
  readonly id: string;
  readonly status: 'queued' | 'held' | 'suppressed';
  readonly recipients: readonly BatonRecipient[];
  readonly rewrittenFrom: string | null;
}

/** What `sendMail` resolves to. */
export interface BatonSentMessageInfo {
  /** Baton's message id (`GET /v1/messages/{id}` reads its status), not the Message-ID header. */
  readonly messageId: string;
  /** The envelope nodemailer built (Bcc recipients included). */
  readonly envelope: { readonly from: string | false; readonly to: string[] };
  /** Recipients Baton queued. */
  readonly accepted: string[];
  /** Recipients on the suppression list: recorded, never sent. */
  readonly rejected: string[];
  /** Recipients the abuse guard holds until an operator releases them. */
  readonly pending: string[];
  /** `202 <status> <id>`. */
  readonly response: string;
  /** Baton's answer as it came. */
  readonly baton: BatonAccepted;
}

/** A problem Baton answered (or a network failure), as nodemailer passes errors on. */
export declare class BatonError extends Error {
  /** The problem's code (`forbidden`, `invalid_message`, `rate_limited`, ...), or ECONNECTION / ETIMEDOUT, or EPROTOCOL (a 2xx answer that is not Baton's: the URL points elsewhere). */
  readonly code: string;
  /** The HTTP status, when Baton answered. */
  readonly responseCode?: number;
  /** `<status> <code>: <detail>`, when Baton answered. */
  readonly response?: string;
  /** The problem's detail. */
  readonly detail?: string;
  /** Field errors of a 422, each naming the part at fault (`raw`, `envelope.to[0]`, `headers.Subject`). */
  readonly errors?: ReadonlyArray<{ readonly path: string; readonly message: string }>;
  /** The problem JSON as Baton sent it. */
  readonly problem?: Readonly<Record<string, unknown>>;
  /** Seconds Baton asked to wait (Retry-After), on a 429 or 503 that was not retried. */
  readonly retryAfter?: number;
}

export declare class BatonTransport implements Transport<BatonSentMessageInfo> {
  constructor(options: BatonTransportOptions);
  readonly name: string;
  readonly version: string;
  readonly supportsAbortSignal: true;
  send: Transport<BatonSentMessageInfo>['send'];
  verify(): Promise<true>;
  verify(callback: (error: Error | null, success?: true) => void): void;
  close(): void;
  isIdle(): boolean;
}

/** `nodemailer.createTransport(batonTransport({ url, apiKey }))`. */
export declare function batonTransport(options: BatonTransportOptions): BatonTransport;
