/**
 * Reads SMTP replies off a socket as a client does (a multi-line reply counts once), checking the
 * form of every line the server writes: for the SMTP fuzz (which counts what breaks the rules)
 * and the bench's SMTP client.
 */
import type { Socket } from 'node:net';

/** One complete reply. */
export interface SmtpReplyLines {
  readonly code: number;
  /** Every line, code included. */
  readonly lines: readonly string[];
}

const REPLY_LINE = /^(\d{3})([ -])/;

/** Reads replies off a socket, in order; remembers whether the server closed. */
export class ReplyReader {
  #buffer = Buffer.alloc(0);
  #lines: string[] = [];
  #code: string | undefined;
  readonly #ready: SmtpReplyLines[] = [];
  #waiter: ((reply: SmtpReplyLines | undefined) => void) | undefined;
  closed = false;

  readonly socket: Socket;
  readonly #broken: (rule: string) => void;
  readonly #onReply: (reply: SmtpReplyLines) => void;

  /**
   * `broken` hears of each line that breaks RFC 5321's reply form (`^\d{3}[ -]`, CRLF, at most
   * 512 octets, one code per multi-line reply); `onReply` sees every complete reply.
   */
  constructor(
    socket: Socket,
    broken: (rule: string) => void = () => undefined,
    onReply: (reply: SmtpReplyLines) => void = () => undefined,
  ) {
    this.socket = socket;
    this.#broken = broken;
    this.#onReply = onReply;
    socket.on('data', this.#onData);
    socket.on('close', this.#onClose);
    socket.on('error', () => undefined);
  }

  detach(): void {
    this.socket.off('data', this.#onData);
    this.socket.off('close', this.#onClose);
  }

  /** The next reply, or undefined when the connection closed (or nothing came within `ms`). */
  next(ms: number): Promise<SmtpReplyLines | undefined | 'timeout'> {
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve('timeout');
      }, ms);
      this.#waiter = (reply) => {
        clearTimeout(timer);
        this.#waiter = undefined;
        resolve(reply);
      };
    });
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (let end = this.#buffer.indexOf('\r\n'); end >= 0; end = this.#buffer.indexOf('\r\n')) {
      const raw = this.#buffer.subarray(0, end);
      this.#buffer = this.#buffer.subarray(end + 2);
      const line = raw.toString('latin1');
      const form = REPLY_LINE.exec(line);
      if (!form) {
        this.#broken(`malformed reply line ${JSON.stringify(line.slice(0, 120))}`);
        continue;
      }
      if (raw.length + 2 > 512) this.#broken(`reply line of ${raw.length + 2} octets (RFC 5321: 512)`);
      if (/[\0\r\n]/.test(line)) this.#broken(`control character in ${JSON.stringify(line)}`);
      if (this.#code !== undefined && this.#code !== form[1]) {
        this.#broken(`multi-line reply changes code: ${this.#code} then ${line.slice(0, 60)}`);
      }
      this.#code = form[1];
      this.#lines.push(line);
      if (form[2] === '-') continue;
      const reply = { code: Number(form[1]), lines: this.#lines };
      this.#lines = [];
      this.#code = undefined;
      this.#onReply(reply);
      if (this.#waiter) this.#waiter(reply);
      else this.#ready.push(reply);
    }
  };

  readonly #onClose = (): void => {
    this.closed = true;
    if (this.#buffer.length > 0) {
      this.#broken(`reply without a line end: ${JSON.stringify(this.#buffer.toString('latin1'))}`);
    }
    this.#waiter?.(undefined);
  };
}
