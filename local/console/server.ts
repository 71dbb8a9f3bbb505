import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { MESSAGE_ID, type MessageRecord } from '../../lambdas/domain/message.ts';
import type { MessageScanner, MessageStore } from '../../lambdas/domain/ports.ts';
import type { StatsView } from '../../lambdas/domain/reporting/stats.ts';
import { type MessageView, toMessageView } from '../../lambdas/domain/reporting/status.ts';
import type { SuppressionView } from '../../lambdas/domain/suppression/suppression.ts';
import type { DeliveryAttemptView, WebhookEndpointView } from '../../lambdas/domain/webhooks/operations.ts';
import { SIMULATOR_DOMAIN, type SimulatorMailbox } from '../ses-standin/index.ts';
import { html } from './html.ts';
import { readOutbox } from './outbox.ts';
import { landingPage, messagePage, notFoundPage, suppressionsPage, webhooksPage } from './pages.ts';
import { ConsoleGuard, fetchAllowed, hostAllowed, originAllowed, SESSION_COOKIE } from './security.ts';

/**
 * The local console (`/console`, local mode only): server-rendered pages over what local mode
 * keeps. Reads come from the Messages table (a scan: there is no list route, and locally it is
 * small) and the outbox; everything else, and every change, goes through the local HTTP API with
 * the development key, so the real api function decides, as for any client.
 */

export const CONSOLE_PATH = '/console';
/** The newest messages the landing page lists. */
export const CONSOLE_MESSAGE_LIMIT = 100;
const MAILBOXES: readonly SimulatorMailbox[] = ['success', 'bounce', 'complaint', 'ooto', 'suppressionlist'];
const MAX_FORM_BYTES = 64 * 1024;
const HEARTBEAT_TICKS = 15;
/**
 * Open event streams at most (a browser holds six connections per host anyway): beyond it a stream
 * is refused, so a client opening streams without end cannot run the process out of sockets.
 */
export const MAX_CONSOLE_STREAMS = 32;
/** Unsent bytes a stream may hold before its client counts as not reading, and is dropped. */
const MAX_STREAM_BACKLOG = 64 * 1024;

const STATIC: Readonly<Record<string, { type: string; body: Buffer }>> = {
  'console.js': {
    type: 'text/javascript; charset=utf-8',
    body: readFileSync(join(import.meta.dirname, 'static', 'console.js')),
  },
  'console.css': {
    type: 'text/css; charset=utf-8',
    body: readFileSync(join(import.meta.dirname, 'static', 'console.css')),
  },
};

/** Every console page: scripts and styles from /console/static only, never framed. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it Chromium sends `Origin: null` with the console's own form posts.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

/**
 * A message's own content (its HTML, raw source, attachments): a sandbox with an opaque origin and
 * no scripts, whatever the sanitizer let through, framed only by the console itself. Remote images
 * stay blocked, as a careful mail client does; cid: images arrive inlined as data: URLs.
 */
export const CONTENT_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; frame-ancestors 'self'",
  'x-frame-options': 'SAMEORIGIN',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface ConsoleOptions {
  /** The development key: the console acts as its tenant through the API. */
  readonly apiKey: string;
  readonly tenant: string;
  /** The API's base URL, known once the gateway listens. */
  readonly apiUrl: () => string;
  readonly messages: MessageScanner & Pick<MessageStore, 'get'>;
  readonly outboxDir: string;
  /** The domain the test messages are sent from (one the development key may use). */
  readonly fromDomain: string;
  /** How often the event stream looks for changed messages. @default 1000 */
  readonly pollMs?: number;
  readonly clock?: () => Date;
}

export interface LocalConsole {
  /** Answers a request under /console; false for any other path (the API's). `url`: the gateway's parse of the target. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** Ends the event streams and their poll. */
  close(): void;
}

interface ApiAnswer<T> {
  readonly status: number;
  readonly body: T;
}

/** What a problem answer says, for the page that shows it. */
function problemText(answer: ApiAnswer<unknown>): string {
  const p = answer.body as {
    detail?: unknown;
    title?: unknown;
    errors?: Array<{ path?: string; message?: string }>;
  };
  const fields = (p.errors ?? []).map((e) => `${e.path ?? ''} ${e.message ?? ''}`.trim()).join('; ');
  const text = typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : 'failed';
  return `The API answered ${answer.status}: ${text}${fields ? ` (${fields})` : ''}`;
}

export function createConsole(options: ConsoleOptions): LocalConsole {
  const guard = new ConsoleGuard();
  const clock = options.clock ?? (() => new Date());
  const pollMs = options.pollMs ?? 1000;
  const streams = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  /** Each message's version at the last poll; emptied when polling (re)starts (see openStream). */
  let seen = new Map<string, string>();
  let polling = false;
  let ticks = 0;

  async function api<T>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const res = await fetch(`${options.apiUrl()}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${options.apiKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  }

  async function records(): Promise<MessageRecord[]> {
    const all: MessageRecord[] = [];
    let after: string | undefined;
    do {
      const page = await options.messages.scanTenant(options.tenant, 0, 1, after);
      all.push(...page.records);
      after = page.next;
    } while (after !== undefined);
    return all;
  }

  async function latest(): Promise<MessageView[]> {
    const now = clock();
    return (await records())
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
      .slice(0, CONSOLE_MESSAGE_LIMIT)
      .map((r) => toMessageView(r, now));
  }

  async function messageOf(id: string): Promise<MessageView | undefined> {
    if (!MESSAGE_ID.test(id)) return undefined;
    const record = await options.messages.get(id);
    return record && record.tenant === options.tenant ? toMessageView(record, clock()) : undefined;
  }

  // --- live updates: one poll of the table for every open stream -------------------------------

  async function poll(): Promise<void> {
    if (polling) return;
    polling = true;
    try {
      const now = new Map((await records()).map((r) => [r.id, `${r.version}:${r.updatedAt}`]));
      const changed = [...now].filter(([id, v]) => seen.get(id) !== v).map(([id]) => id);
      seen = now;
      const frame =
        changed.length > 0
          ? `event: change\ndata: ${JSON.stringify({ ids: changed })}\n\n`
          : ++ticks % HEARTBEAT_TICKS === 0
            ? ': keep-alive\n\n'
            : undefined;
      if (frame)
        for (const s of streams) {
          if (s.writableLength > MAX_STREAM_BACKLOG) {
            streams.delete(s);
            s.destroy();
          } else s.write(frame);
        }
    } catch {
      // The table is briefly unavailable (local mode stopping): the next tick tries again.
    } finally {
      polling = false;
    }
  }

  function openStream(req: IncomingMessage, res: ServerResponse): void {
    if (streams.size >= MAX_CONSOLE_STREAMS) {
      res.setHeader('retry-after', '5');
      plain(res, 503, 'Too many open console event streams.');
      return;
    }
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    streams.add(res);
    if (!timer) {
      // The first poll then announces every message: a page rendered before it looked is refreshed
      // once, so no change between its rendering and the stream's start is missed.
      seen = new Map();
      timer = setInterval(() => void poll(), pollMs);
    }
    req.on('close', () => {
      streams.delete(res);
      if (streams.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
      }
    });
  }

  // --- responses ----------------------------------------------------------------------------------

  function page(res: ServerResponse, status: number, body: string, cookie?: string): void {
    res.writeHead(status, {
      ...PAGE_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      ...(cookie ? { 'set-cookie': cookie } : {}),
    });
    res.end(body);
  }

  function plain(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { ...PAGE_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${text}\n`);
  }

  function redirect(res: ServerResponse, location: string): void {
    res.writeHead(303, { ...PAGE_HEADERS, location });
    res.end();
  }

  async function get(
    path: string,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
    token: string,
    cookie: string | undefined,
  ): Promise<void> {
    if (path === CONSOLE_PATH || path === `${CONSOLE_PATH}/`) {
      const [messages, stats] = await Promise.all([latest(), api<StatsView>('GET', '/v1/stats')]);
      const sent = url.searchParams.get('sent') ?? '';
      const mailbox = url.searchParams.get('to') ?? '';
      const notice =
        MESSAGE_ID.test(sent) && (MAILBOXES as readonly string[]).includes(mailbox)
          ? html`Sent <a href="${CONSOLE_PATH}/messages/${sent}">${sent}</a> to ${mailbox}@${SIMULATOR_DOMAIN}.`
          : undefined;
      return page(
        res,
        200,
        landingPage({
          messages,
          stats: stats.status === 200 ? stats.body : undefined,
          csrfToken: token,
          mailboxes: MAILBOXES,
          simulatorDomain: SIMULATOR_DOMAIN,
          ...(notice ? { notice } : {}),
        }),
        cookie,
      );
    }
    if (path === `${CONSOLE_PATH}/events`) return openStream(req, res);
    if (path === `${CONSOLE_PATH}/suppressions`) return showSuppressions(res, 200, token, cookie);
    if (path === `${CONSOLE_PATH}/webhooks`) {
      const list = await api<{ items: WebhookEndpointView[] }>('GET', '/v1/webhooks');
      if (list.status !== 200)
        return page(res, 502, webhooksPage({ endpoints: [], error: problemText(list) }));
      const endpoints = await Promise.all(
        list.body.items.map(async (endpoint) => {
          const attempts = await api<{ items: DeliveryAttemptView[] }>(
            'GET',
            `/v1/webhooks/${encodeURIComponent(endpoint.id)}/deliveries?limit=20`,
          );
          return { endpoint, attempts: attempts.status === 200 ? attempts.body.items : [] };
        }),
      );
      return page(res, 200, webhooksPage({ endpoints }), cookie);
    }
    const asset = /^\/console\/static\/([a-z]+\.(?:js|css))$/.exec(path)?.[1];
    const file = asset ? STATIC[asset] : undefined;
    if (file) {
      res.writeHead(200, { ...PAGE_HEADERS, 'content-type': file.type });
      res.end(file.body);
      return;
    }
    const m = /^\/console\/messages\/([^/]+)(?:\/(html|raw|attachments\/(\d{1,4})))?$/.exec(path);
    if (m?.[1]) {
      const id = m[1];
      const view = await messageOf(id);
      if (!view)
        return page(res, 404, notFoundPage('No message of the development key has this id.'), cookie);
      const copy = await readOutbox(options.outboxDir, id);
      if (m[2] === undefined) return page(res, 200, messagePage({ view, outbox: copy }), cookie);
      if (m[2] === 'html' && copy?.html !== undefined) {
        res.writeHead(200, { ...CONTENT_HEADERS, 'content-type': 'text/html; charset=utf-8' });
        res.end(copy.html);
        return;
      }
      if (m[2] === 'raw' && copy) {
        res.writeHead(200, { ...CONTENT_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
        res.end(copy.raw);
        return;
      }
      const attachment = m[3] === undefined ? undefined : copy?.attachments[Number(m[3])];
      if (attachment) {
        const ascii = attachment.filename.replace(/[^\w.-]/g, '_');
        res.writeHead(200, {
          ...CONTENT_HEADERS,
          // Never rendered here, whatever type the message claimed: a download.
          'content-type': 'application/octet-stream',
          'content-disposition': `attachment; filename="${ascii}"; filename*=UTF-8''${extValue(attachment.filename)}`,
        });
        res.end(attachment.content);
        return;
      }
      return plain(res, 404, 'The outbox has no such part of this message.');
    }
    return page(res, 404, notFoundPage('The console has no such page.'), cookie);
  }

  async function showSuppressions(
    res: ServerResponse,
    status: number,
    token: string,
    cookie: string | undefined,
    error?: string,
  ): Promise<void> {
    const list = await api<{ items: SuppressionView[] }>('GET', '/v1/suppressions?limit=100');
    const items = list.status === 200 ? list.body.items : [];
    const shown = error ?? (list.status === 200 ? undefined : problemText(list));
    return page(
      res,
      status,
      suppressionsPage({ items, csrfToken: token, ...(shown ? { error: shown } : {}) }),
      cookie,
    );
  }

  async function post(
    path: string,
    form: URLSearchParams,
    res: ServerResponse,
    token: string,
  ): Promise<void> {
    if (path === `${CONSOLE_PATH}/send-test`) {
      const mailbox = form.get('mailbox') ?? '';
      if (!(MAILBOXES as readonly string[]).includes(mailbox)) return plain(res, 422, 'Unknown mailbox.');
      const sent = await api<{ id?: string }>('POST', '/v1/messages', {
        from: `Baton console <console@${options.fromDomain}>`,
        to: [`${mailbox}@${SIMULATOR_DOMAIN}`],
        subject: `Console test: ${mailbox}`,
        text: `A test message from the local console to the ${mailbox} mailbox simulator.`,
        html: `<p>A test message from the local console to the <strong>${mailbox}</strong> mailbox simulator.</p>`,
      });
      if (sent.status !== 202 || !sent.body.id) return plain(res, 502, problemText(sent));
      return redirect(res, `${CONSOLE_PATH}?sent=${encodeURIComponent(sent.body.id)}&to=${mailbox}`);
    }
    if (path === `${CONSOLE_PATH}/suppressions` || path === `${CONSOLE_PATH}/suppressions/lift`) {
      const address = (form.get('address') ?? '').trim();
      const lift = path.endsWith('/lift');
      const detail = (form.get('detail') ?? '').trim();
      const answer = lift
        ? await api('DELETE', `/v1/suppressions/${encodeURIComponent(address)}`)
        : await api('PUT', `/v1/suppressions/${encodeURIComponent(address)}`, {
            reason: 'manual',
            ...(detail ? { detail } : {}),
          });
      if (answer.status === (lift ? 204 : 200)) return redirect(res, `${CONSOLE_PATH}/suppressions`);
      return showSuppressions(res, answer.status, token, undefined, problemText(answer));
    }
    return plain(res, 404, 'The console has no such action.');
  }

  return {
    async handle(req, res, url) {
      const path = url.pathname;
      if (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`)) return false;
      const port = req.socket.localPort ?? 0;
      // Node keeps the first of several Host headers; a request with more is refused (RFC 9112).
      const hosts = req.headersDistinct.host ?? [];
      if (hosts.length !== 1 || !hostAllowed(hosts[0], port)) {
        plain(res, 421, `The console answers only to 127.0.0.1:${port} and localhost:${port}.`);
        return true;
      }
      const header = (name: string) => {
        const value = req.headers[name];
        return typeof value === 'string' ? value : undefined;
      };
      if (!fetchAllowed(header('sec-fetch-site'), header('sec-fetch-mode'), header('sec-fetch-dest'))) {
        plain(res, 403, 'Refused: the console answers its own pages, and links to it, only.');
        return true;
      }
      const existing = guard.sessionOf(req.headers.cookie);
      const session = existing ?? guard.newSession();
      const cookie = existing
        ? undefined
        : `${SESSION_COOKIE}=${session}; Path=${CONSOLE_PATH}; HttpOnly; SameSite=Lax`;
      const token = guard.tokenFor(session);
      const method = (req.method ?? 'GET').toUpperCase();
      try {
        if (method === 'GET' || method === 'HEAD') {
          await get(path, url, req, res, token, cookie);
        } else if (method === 'POST') {
          const body = await readForm(req);
          if (body === undefined) {
            plain(res, 413, 'The form is too large.');
          } else if (
            !originAllowed(req.headers.origin, port) ||
            !guard.tokenValid(existing, body.get('csrf') ?? undefined)
          ) {
            plain(res, 403, 'Refused: no valid console token (reload the page and try again).');
          } else {
            await post(path, body, res, token);
          }
        } else {
          res.setHeader('allow', 'GET, HEAD, POST');
          plain(res, 405, 'Method not allowed.');
        }
      } catch (error) {
        if (!res.headersSent) plain(res, 500, `The console failed: ${(error as Error).message}`);
        else res.end();
      }
      return true;
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      for (const s of streams) s.end();
      streams.clear();
    },
  };
}

/**
 * RFC 8187's value-chars: encodeURIComponent leaves `'`, `(`, `)` and `*` as they are, which are
 * not attr-chars (a quote there ends the charset'language'value split early in some parsers), and
 * throws on a lone surrogate, which becomes U+FFFD here. A bidirectional control would make the
 * saved name read otherwise (`report<U+202E>fdp.exe` as `reportexe.pdf`): it becomes `_`.
 */
function extValue(name: string): string {
  return encodeURIComponent(name.toWellFormed().replace(/[\u202A-\u202E\u2066-\u2069]/g, '_')).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_FORM_BYTES) chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(
        size > MAX_FORM_BYTES ? undefined : new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      ),
    );
    req.on('error', reject);
  });
}
