/**
 * A minimal SMTP submission client for the bench: one session on a raw socket (EHLO, STARTTLS,
 * AUTH PLAIN, then MAIL/RCPT/DATA pipelined per message), so the time from the end of DATA to the
 * server's reply can be read exactly; a library transport hides that step inside sendMail.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface SmtpAnswer {
  readonly code: number;
  /** The reply's lines without their code, joined with a newline. */
  readonly text: string;
}

/** Reads complete (possibly multi-line) replies off a socket, in order. */
class ReplyReader {
  #buffer = '';
  #lines: string[] = [];
  readonly #ready: SmtpAnswer[] = [];
  readonly #waiting: Array<{ resolve(a: SmtpAnswer): void; reject(e: Error): void }> = [];
  #ended: Error | undefined;

  readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', this.#onData);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onEnd);
  }

  detach(): void {
    this.socket.off('data', this.#onData);
    this.socket.off('close', this.#onEnd);
    this.socket.off('error', this.#onEnd);
  }

  next(): Promise<SmtpAnswer> {
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buffer += chunk.toString('latin1');
    for (let end = this.#buffer.indexOf('\r\n'); end >= 0; end = this.#buffer.indexOf('\r\n')) {
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      this.#lines.push(line.slice(4));
      if (line[3] === '-') continue;
      const answer = { code: Number(line.slice(0, 3)), text: this.#lines.join('\n') };
      this.#lines = [];
      const waiter = this.#waiting.shift();
      if (waiter) waiter.resolve(answer);
      else this.#ready.push(answer);
    }
  };

  readonly #onEnd = (error?: Error | boolean): void => {
    this.#ended = error instanceof Error ? error : new Error('the SMTP server closed the connection');
    for (const w of this.#waiting.splice(0)) w.reject(this.#ended);
  };
}

export interface SessionOptions {
  readonly port: number;
  readonly host?: string;
  /** The certificate to trust for STARTTLS (local mode's self-signed one). */
  readonly ca: string | Buffer;
  /** The API key, sent as the AUTH PLAIN password. */
  readonly password: string;
}

export interface Submitted {
  /** The Baton message id from `queued as <id>`. */
  readonly id: string;
  /** From the last byte of DATA's terminator written to the 250 read, ms. */
  readonly dataToReplyMs: number;
  /** From MAIL FROM written to the 250 read, ms. */
  readonly transactionMs: number;
}

export class SmtpSession {
  readonly #socket: Socket;
  readonly #replies: ReplyReader;

  private constructor(socket: Socket, replies: ReplyReader) {
    this.#socket = socket;
    this.#replies = replies;
  }

  /** Connects, says EHLO, upgrades with STARTTLS and authenticates: ready for messages. */
  static async open(options: SessionOptions): Promise<SmtpSession> {
    const host = options.host ?? '127.0.0.1';
    const plain = connect(options.port, host);
    plain.setNoDelay(true);
    const first = new ReplyReader(plain);
    await expect(first, 220, 'greeting');
    plain.write('EHLO bench.example\r\n');
    await expect(first, 250, 'EHLO');
    plain.write('STARTTLS\r\n');
    await expect(first, 220, 'STARTTLS');
    first.detach();
    const secure = await new Promise<Socket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ca: options.ca, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    const replies = new ReplyReader(secure);
    secure.write('EHLO bench.example\r\n');
    await expect(replies, 250, 'EHLO after STARTTLS');
    secure.write(`AUTH PLAIN ${Buffer.from(`\u0000bench\u0000${options.password}`).toString('base64')}\r\n`);
    await expect(replies, 235, 'AUTH');
    return new SmtpSession(secure, replies);
  }

  /** One message, its commands pipelined (RFC 2920); anything but a 250 fails the bench. */
  async send(mailFrom: string, rcptTo: string, mime: Buffer): Promise<Submitted> {
    const t0 = performance.now();
    this.#socket.write(`MAIL FROM:<${mailFrom}>\r\nRCPT TO:<${rcptTo}>\r\nDATA\r\n`);
    await expect(this.#replies, 250, 'MAIL FROM');
    await expect(this.#replies, 250, 'RCPT TO');
    await expect(this.#replies, 354, 'DATA');
    // A 10 KB write goes to the kernel at once on loopback: the end of DATA is when it returns.
    this.#socket.write(Buffer.concat([dotStuffed(mime), Buffer.from('\r\n.\r\n')]));
    const sent = performance.now();
    const queued = await expect(this.#replies, 250, 'end of DATA');
    const t1 = performance.now();
    const id = /queued as (\S+)/.exec(queued.text)?.[1];
    if (!id) throw new Error(`end of DATA answered without an id: ${queued.text}`);
    return { id, dataToReplyMs: t1 - sent, transactionMs: t1 - t0 };
  }

  async quit(): Promise<void> {
    this.#socket.write('QUIT\r\n');
    await this.#replies.next().catch(() => undefined);
    this.#socket.destroy();
  }
}

async function expect(replies: ReplyReader, code: number, step: string): Promise<SmtpAnswer> {
  const answer = await replies.next();
  if (answer.code !== code) throw new Error(`${step} answered ${answer.code} ${answer.text}`);
  return answer;
}

/** RFC 5321 §4.5.2: a line that starts with a dot gets another one. */
function dotStuffed(mime: Buffer): Buffer {
  const text = mime.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1..').replace(/\r\n$/, ''), 'latin1');
}
