import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The console's defences. It acts with the development key (every scope), so whatever a browser
 * can be made to send it counts: a page on another site may post forms to 127.0.0.1 (the token
 * stops that), and DNS rebinding may give such a page our origin under its own name (the Host
 * check stops that, since the browser then sends that name as Host).
 */

/**
 * The console's cookie: a random session id, to which each form token is bound. SameSite=Lax, not
 * Strict: a Strict cookie is not sent when a link on another site leads to the console, which then
 * issued a new session and broke the forms of every console page already open. Lax still keeps
 * it from any cross-site POST, and the token is what guards a change.
 */
export const SESSION_COOKIE = 'baton_console';
const SESSION = /^[0-9a-f]{32}$/;

/** Only the names loopback has: a rebound DNS name arrives with its own Host and is refused. */
export function hostAllowed(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const h = host.toLowerCase();
  return h === `127.0.0.1:${port}` || h === `localhost:${port}`;
}

/** A form post from the console's own pages only; browsers that send no Origin rely on the token. */
export function originAllowed(origin: string | undefined, port: number): boolean {
  if (origin === undefined) return true;
  return origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
}

/**
 * Signed double-submit tokens: the token is an HMAC of the session cookie under a secret this
 * process draws at start, so a restart invalidates old pages and no token works with another cookie.
 */
export class ConsoleGuard {
  readonly #secret: Buffer;

  constructor(secret: Buffer = randomBytes(32)) {
    this.#secret = secret;
  }

  newSession(): string {
    return randomBytes(16).toString('hex');
  }

  tokenFor(session: string): string {
    return createHmac('sha256', this.#secret).update(`console-csrf:${session}`).digest('base64url');
  }

  tokenValid(session: string | undefined, token: string | undefined): boolean {
    if (!session || !SESSION.test(session) || !token) return false;
    const expected = Buffer.from(this.tokenFor(session));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The session id in a Cookie header, if it has a well-formed one. */
  sessionOf(cookieHeader: string | undefined): string | undefined {
    for (const part of (cookieHeader ?? '').split(';')) {
      const [name, value] = part.trim().split('=', 2);
      if (name === SESSION_COOKIE && value && SESSION.test(value)) return value;
    }
    return undefined;
  }
}

/**
 * Fetch metadata's resource isolation: a request another site's page made (an `<img>`, a
 * `fetch`, an EventSource, a frame), including a page on another port of this host (same-site),
 * is refused; following a link to the console (a top-level navigation) and the console's own
 * requests are not. Without this a page elsewhere could hold the console's event streams (they
 * are bounded) and probe which messages exist. Browsers that send no metadata rely on the rest.
 */
export function fetchAllowed(
  site: string | undefined,
  mode: string | undefined,
  dest: string | undefined,
): boolean {
  if (site === undefined || site === 'same-origin' || site === 'none') return true;
  return mode === 'navigate' && (dest === undefined || dest === 'document');
}
