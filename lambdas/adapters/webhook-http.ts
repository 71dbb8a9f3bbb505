/**
 * The HTTP client of webhook delivery (issue 14), over node:http/node:https rather than fetch:
 * the SSRF check must judge the very address the socket connects to, so the name is resolved here,
 * every address checked, and the request pinned to the checked one through its `lookup` (a second
 * resolution could answer differently: DNS rebinding). The URL's host stays the Host header and the
 * TLS server name, so the receiver and its certificate see the name it registered.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import tls from 'node:tls';
import type { HttpPoster, PostResult, WebhookRequest } from '../domain/webhooks/delivery-ports.ts';
import { refusedAddress } from '../domain/webhooks/url-policy.ts';

/** Every address a name resolves to. */
export type ResolveAll = (hostname: string) => Promise<LookupAddress[]>;

export interface WebhookHttpOptions {
  /**
   * Local mode only (BATON_WEBHOOK_ALLOW_LOOPBACK=1): a URL whose host is 127.0.0.1, localhost or
   * [::1] may reach a loopback address, so a developer can receive webhooks on their laptop.
   * @default false
   */
  readonly allowLoopback?: boolean;
  /** The whole attempt, name resolution included. @default 15000 */
  readonly timeoutMs?: number;
  /** @default dns.lookup with `all: true` */
  readonly lookup?: ResolveAll;
  /** Certificate authorities trusted besides the system's (tests: a self-signed receiver). */
  readonly ca?: string;
}

/** The answer's bytes read at most; the socket is closed after (a receiver cannot make us download). */
export const MAX_ANSWER_BYTES = 4096;

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

const systemLookup: ResolveAll = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
  );

class RefusedAddressError extends Error {
  override readonly name = 'RefusedAddressError';
}

export class WebhookHttpPoster implements HttpPoster {
  readonly #allowLoopback: boolean;
  readonly #timeoutMs: number;
  readonly #lookup: ResolveAll;
  readonly #ca: string | undefined;

  constructor(options: WebhookHttpOptions = {}) {
    this.#allowLoopback = options.allowLoopback ?? false;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#lookup = options.lookup ?? systemLookup;
    this.#ca = options.ca;
  }

  post(webhook: WebhookRequest): Promise<PostResult> {
    const started = performance.now();
    const latencyMs = (): number => Math.round(performance.now() - started);
    return new Promise<PostResult>((resolve) => {
      let req: ClientRequest | undefined;
      let answer: { status: number; retryAfter?: string; chunks: Buffer[] } | undefined;
      let settled = false;
      const settle = (result: PostResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req?.destroy();
        resolve(result);
      };
      const answered = (): void => {
        if (answer === undefined) return;
        const snippet = Buffer.concat(answer.chunks).toString('utf8');
        const { status, retryAfter } = answer;
        settle({
          status,
          ...(retryAfter === undefined ? {} : { retryAfter }),
          snippet,
          latencyMs: latencyMs(),
        });
      };
      const timer = setTimeout(() => {
        // A receiver that answered its status but dribbles the body did answer: keep what came.
        if (answer !== undefined) return answered();
        settle({
          error: 'timeout',
          detail: `no answer within ${this.#timeoutMs} ms`,
          latencyMs: latencyMs(),
        });
      }, this.#timeoutMs);

      this.#target(webhook.url)
        .then(({ url, address, family }) => {
          if (settled) return;
          const pinned: LookupFunction = (_hostname, options, callback) => {
            if (options.all) callback(null, [{ address, family }]);
            else callback(null, address, family);
          };
          const https = url.protocol === 'https:';
          req = (https ? httpsRequest : httpRequest)(url, {
            method: 'POST',
            ...(https && this.#ca !== undefined ? { ca: [...tls.rootCertificates, this.#ca] } : {}),
            lookup: pinned,
            // One connection per attempt: no pooled socket outlives the check that admitted it.
            agent: false,
            headers: {
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(webhook.body)),
              'user-agent': 'Baton-Webhooks/1',
              ...webhook.headers,
            },
          });
          req.on('response', (res: IncomingMessage) => {
            const retryAfter = res.headers['retry-after'];
            answer = {
              status: res.statusCode ?? 0,
              ...(retryAfter === undefined ? {} : { retryAfter }),
              chunks: [],
            };
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              if (answer === undefined) return;
              const part = chunk.subarray(0, MAX_ANSWER_BYTES - size);
              answer.chunks.push(part);
              size += part.length;
              if (size >= MAX_ANSWER_BYTES) answered();
            });
            res.on('end', answered);
            res.on('error', answered);
            res.on('close', answered);
          });
          // A receiver that switches protocols (101) has answered, just not as a webhook receiver:
          // node hands the socket to an 'upgrade' listener, and without one waits until the timeout.
          req.on('upgrade', (res: IncomingMessage, socket) => {
            socket.destroy();
            answer = { status: res.statusCode ?? 0, chunks: [] };
            answered();
          });
          req.on('error', (error: NodeJS.ErrnoException) => {
            if (answer !== undefined) return answered();
            settle({ error: 'network', detail: error.code ?? error.message, latencyMs: latencyMs() });
          });
          req.end(webhook.body);
        })
        .catch((error: unknown) => {
          if (error instanceof RefusedAddressError) {
            settle({ error: 'refused-address', detail: error.message, latencyMs: latencyMs() });
          } else {
            const code = (error as NodeJS.ErrnoException | undefined)?.code;
            const detail = code ?? (error instanceof Error ? error.message : 'unknown error');
            settle({ error: 'network', detail, latencyMs: latencyMs() });
          }
        });
    });
  }

  /** The URL and the one checked address to connect to; RefusedAddressError when any is not public. */
  async #target(raw: string): Promise<{ url: URL; address: string; family: number }> {
    const url = new URL(raw);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new RefusedAddressError(`${url.protocol} is not a webhook scheme`);
    }
    // Registration refuses these; node would turn them into an Authorization header.
    if (url.username !== '' || url.password !== '') {
      throw new RefusedAddressError('the URL carries credentials');
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const literal = isIP(host);
    const addresses = literal === 0 ? await this.#lookup(host) : [{ address: host, family: literal }];
    const loopbackAllowed = this.#allowLoopback && LOOPBACK_HOSTS.has(url.hostname);
    // Every address, not only the one used: a name that mixes public and private addresses is an attack.
    for (const { address } of addresses) {
      const why = refusedAddress(address);
      if (why !== undefined && !(loopbackAllowed && isLoopback(address))) {
        throw new RefusedAddressError(`${url.hostname} resolves to ${why}`);
      }
    }
    const [first] = addresses;
    if (first === undefined) throw new RefusedAddressError(`${url.hostname} resolves to no address`);
    return { url, address: first.address, family: first.family };
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || (isIP(address) === 4 && address.startsWith('127.'));
}
