/**
 * A minimal SMTP submission client for the bench: one session on a raw socket (EHLO, STARTTLS,
 * AUTH PLAIN, then MAIL/RCPT/DATA pipelined per message), so the time from the end of DATA to the
 * server's reply can be read exactly; a library transport hides that step inside sendMail.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ReplyReader, type SmtpReplyLines } from '../test/support/smtp-replies.ts';

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
    const id = /queued as (\S+)/.exec(queued.lines.join('\n'))?.[1];
    if (!id) throw new Error(`end of DATA answered without an id: ${queued.lines.join(' | ')}`);
    return { id, dataToReplyMs: t1 - sent, transactionMs: t1 - t0 };
  }

  async quit(): Promise<void> {
    this.#socket.write('QUIT\r\n');
    await this.#replies.next(5_000);
    this.#socket.destroy();
  }
}

/** Replies the bench waits for come within this, or the run fails. */
const REPLY_MS = 60_000;

async function expect(replies: ReplyReader, code: number, step: string): Promise<SmtpReplyLines> {
  const answer = await replies.next(REPLY_MS);
  if (answer === undefined) throw new Error(`the SMTP server closed the connection at ${step}`);
  if (answer === 'timeout') throw new Error(`no reply to ${step} within ${REPLY_MS / 1000} s`);
  if (answer.code !== code) throw new Error(`${step} answered ${answer.lines.join(' | ')}`);
  return answer;
}

/** RFC 5321 §4.5.2: a line that starts with a dot gets another one. */
function dotStuffed(mime: Buffer): Buffer {
  const text = mime.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1..').replace(/\r\n$/, ''), 'latin1');
}
