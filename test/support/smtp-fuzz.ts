/**
 * The SMTP fuzz's client and inputs: scripts of raw command lines, pipelined bursts, DATA with
 * random header and body bytes, STARTTLS upgrades and abrupt closes, played over a real socket
 * against the SMTP server, with every reply line the server writes kept for the checks.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import fc from 'fast-check';
import { ReplyReader, type SmtpReplyLines } from './smtp-replies.ts';

export type FuzzStep =
  /** One command line (CRLF added), answered by one reply. */
  | { readonly kind: 'line'; readonly bytes: Buffer }
  /** Command lines written at once (RFC 2920), answered in order. */
  | { readonly kind: 'burst'; readonly lines: readonly Buffer[] }
  /** MAIL, RCPTs, DATA (pipelined or one by one), then the content once DATA is answered 354. */
  | {
      readonly kind: 'transaction';
      readonly commands: readonly Buffer[];
      readonly pipelined: boolean;
      readonly content: Buffer;
      /**
       * `end`: the terminator, then wait for the reply. `lose-reply`: the terminator, then close
       * without reading the reply. `cut`: close part-way through the content.
       */
      readonly ending: 'end' | 'lose-reply' | 'cut';
    }
  /** STARTTLS, and the TLS handshake when it is answered 220 (then EHLO again, as clients do). */
  | { readonly kind: 'starttls'; readonly ehlo: boolean }
  /** Bytes without a line end, then the connection is dropped. */
  | { readonly kind: 'partial'; readonly bytes: Buffer }
  /** The session's last transaction again, byte for byte (a client retrying what it sent). */
  | { readonly kind: 'again' }
  | { readonly kind: 'close' };

/** What a session saw: the replies, and what broke the rules the server must keep. */
export interface SessionLog {
  readonly replies: SmtpReplyLines[];
  /** Baton message ids named by a 250 at the end of DATA, with the reply's words. */
  readonly accepted: Array<{ readonly id: string; readonly queued: boolean }>;
  /** End-of-DATA terminators sent whose reply the client did not wait for. */
  lostReplies: number;
  readonly violations: string[];
}

/** How long a command may wait for its reply: the fakes answer at once, the machine may be busy. */
const REPLY_MS = 10_000;

export interface SessionOptions {
  /** The certificate to trust for TLS. */
  readonly ca?: string;
  /** TLS from the first byte (port 465) instead of STARTTLS. */
  readonly implicitTls?: boolean;
  /** Whether the server has begun to shut down: it may then refuse a connection, or drop a TLS handshake. */
  readonly draining?: () => boolean;
}

/**
 * Plays `steps` on one connection to `port`. Every command written on an open connection must
 * get exactly one well-formed reply; the server may close the connection only after a 421 or a
 * 221, or a 554 in place of the greeting (or once the client has dropped it).
 */
export async function playSession(
  port: number,
  steps: readonly FuzzStep[],
  options: SessionOptions = {},
): Promise<SessionLog> {
  const { ca, draining = () => false } = options;
  const log: SessionLog = { replies: [], accepted: [], lostReplies: 0, violations: [] };
  const plain = options.implicitTls
    ? tlsConnect({
        port,
        host: '127.0.0.1',
        ...(ca ? { ca } : {}),
        servername: 'localhost',
        rejectUnauthorized: false,
      })
    : connect(port, '127.0.0.1');
  plain.setNoDelay(true);
  const reader = (socket: Socket) =>
    new ReplyReader(
      socket,
      (rule) => log.violations.push(rule),
      (reply) => log.replies.push(reply),
    );
  let wire = reader(plain);
  let finished = false;

  /** Waits for `n` replies; false when the session is over (closed, 421, 221). */
  const expectReplies = async (n: number, what: string): Promise<SmtpReplyLines[] | undefined> => {
    const got: SmtpReplyLines[] = [];
    for (let i = 0; i < n; i++) {
      const reply = await wire.next(REPLY_MS);
      if (reply === 'timeout') {
        log.violations.push(`no reply to ${what} within ${REPLY_MS / 1000} s`);
        return undefined;
      }
      if (reply === undefined) {
        const last = log.replies.at(-1);
        // 421 and 221 close a session; so may a 554 in place of the greeting (RFC 5321 §3.1).
        const refusedAtConnect = log.replies.length === 1 && last?.code === 554;
        if (last?.code !== 421 && last?.code !== 221 && !refusedAtConnect) {
          log.violations.push(`connection closed without a reply to ${what} (last reply ${last?.code})`);
        }
        return undefined;
      }
      got.push(reply);
      if (reply.code === 421 || reply.code === 221) {
        finished = true;
        return undefined;
      }
    }
    return got;
  };

  const refused = draining();
  const before = log.violations.length;
  const greeting = await expectReplies(1, 'the connection');
  // A server that stopped listening refuses the connection itself, before any greeting.
  if (!greeting && (refused || draining()) && log.replies.length === 0) log.violations.length = before;
  try {
    if (!greeting) return log;
    let last: Extract<FuzzStep, { kind: 'transaction' }> | undefined;
    for (const planned of steps) {
      if (finished || wire.closed) break;
      const step = planned.kind === 'again' ? (last ?? planned) : planned;
      const socket = wire.socket;
      switch (step.kind) {
        case 'line':
          socket.write(Buffer.concat([step.bytes, CRLF]));
          if (!(await expectReplies(1, quoted(step.bytes)))) return log;
          break;
        case 'burst':
          socket.write(Buffer.concat(step.lines.flatMap((l) => [l, CRLF])));
          if (!(await expectReplies(step.lines.length, `a burst of ${step.lines.length} commands`)))
            return log;
          break;
        case 'transaction': {
          last = step;
          let answers: SmtpReplyLines[] | undefined;
          if (step.pipelined) {
            socket.write(Buffer.concat(step.commands.flatMap((c) => [c, CRLF])));
            answers = await expectReplies(step.commands.length, 'a pipelined transaction');
          } else {
            answers = [];
            for (const command of step.commands) {
              socket.write(Buffer.concat([command, CRLF]));
              const one = await expectReplies(1, quoted(command));
              if (!one) return log;
              answers.push(...one);
            }
          }
          if (!answers) return log;
          // The last command is DATA: the content goes only after its 354.
          if (answers.at(-1)?.code !== 354) break;
          const content = dotStuffed(step.content);
          if (step.ending === 'cut') {
            socket.end(content.subarray(0, Math.floor(content.length / 2)));
            return log;
          }
          socket.write(Buffer.concat([content, END_OF_DATA]));
          if (step.ending === 'lose-reply') {
            log.lostReplies += 1;
            socket.end();
            return log;
          }
          const final = await expectReplies(1, 'the end of DATA');
          if (!final) {
            // Closed (421 on a drain, say) before its answer: the message may stand all the same.
            log.lostReplies += 1;
            return log;
          }
          const reply = final[0];
          const text = reply?.lines.join('\n') ?? '';
          const id = /(?:queued|recorded) as (msg_\w+)/.exec(text)?.[1];
          if (reply?.code === 250) {
            if (!id) log.violations.push(`250 at the end of DATA without an id: ${text}`);
            else log.accepted.push({ id, queued: /queued as/.test(text) });
          }
          break;
        }
        case 'starttls': {
          socket.write('STARTTLS\r\n');
          const answer = await expectReplies(1, 'STARTTLS');
          if (!answer) return log;
          if (answer[0]?.code !== 220) break;
          wire.detach();
          const secure = await new Promise<Socket | undefined>((resolve) => {
            const s = tlsConnect(
              { socket, ...(ca ? { ca } : {}), servername: 'localhost', rejectUnauthorized: false },
              () => resolve(s),
            );
            s.once('error', (error) => {
              // A shutting-down server drops handshakes in flight: no session to finish yet.
              if (!draining()) log.violations.push(`TLS handshake after 220 failed: ${error.message}`);
              resolve(undefined);
            });
          });
          if (!secure) return log;
          wire = reader(secure);
          if (step.ehlo) {
            secure.write('EHLO client.example\r\n');
            if (!(await expectReplies(1, 'EHLO after STARTTLS'))) return log;
          }
          break;
        }
        case 'partial':
          socket.end(step.bytes);
          return log;
        case 'again':
          break;
        case 'close':
          return log;
      }
    }
    return log;
  } finally {
    wire.socket.destroy();
    plain.destroy();
  }
}

const CRLF = Buffer.from('\r\n');
const END_OF_DATA = Buffer.from('\r\n.\r\n');

function quoted(line: Buffer): string {
  return JSON.stringify(line.toString('latin1').slice(0, 60));
}

/**
 * RFC 5321 §4.5.2 as a client must: a dot that starts a line (after any line feed, bare or not)
 * gets another, so the content can never end the DATA early.
 */
function dotStuffed(content: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < content.length; i++) {
    const byte = content[i] as number;
    if (byte === 0x2e && (i === 0 || content[i - 1] === 0x0a)) out.push(0x2e);
    out.push(byte);
  }
  return Buffer.from(out);
}

// ---------------------------------------------------------------------------------------------
// Inputs

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

/**
 * Any octet but LF (a LF would split the line into two commands and two replies). DATA and BDAT
 * come only in transactions, which send the content after a 354.
 */
const lineByte = fc.integer({ min: 0, max: 255 }).filter((b) => b !== 0x0a);
const randomLine = (maxLength: number) => fc.array(lineByte, { maxLength }).map((a) => Buffer.from(a));
const anyByte = fc.integer({ min: 0, max: 255 });

/** Addresses a client might put in MAIL or RCPT, good, refused and broken. */
export const ADDRESSES = [
  'app@example.com',
  'billing@mail.example.com',
  'someone@elsewhere.org',
  'success@simulator.amazonses.com',
  'ana@example.org',
  'gone@example.org',
  'Ana@EXAMPLE.org',
  'ünï@example.com',
  'app@exämple.com',
  '"quoted local"@example.com',
  'no-at-sign',
  '@example.com',
  'a@',
  'a@b@example.com',
  `${'l'.repeat(70)}@example.com`,
  `a@${'d'.repeat(260)}.com`,
  '',
];

const address = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ADDRESSES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

const mailParams = fc.array(
  fc.constantFrom(
    ' SIZE=1000',
    ' SIZE=999999999',
    ' SIZE=-1',
    ' SIZE=x',
    ' BODY=8BITMIME',
    ' BODY=7BIT',
    ' BODY=BINARYMIME',
    ' SMTPUTF8',
    ' AUTH=<>',
    ' RET=FULL',
    ' FOO=bar',
    ' =',
  ),
  { maxLength: 3 },
);

const mailCommand = fc
  .tuple(
    fc.constantFrom('MAIL FROM:', 'mail from:', 'MAIL FROM: ', 'MAIL TO:'),
    address,
    mailParams,
    fc.boolean(),
  )
  .map(([verb, a, params, brackets]) => bytes(`${verb}${brackets ? `<${a}>` : a}${params.join('')}`));

const rcptCommand = fc
  .tuple(fc.constantFrom('RCPT TO:', 'rcpt to:', 'RCPT TO: ', 'RCPT FROM:'), address, fc.boolean())
  .map(([verb, a, brackets]) => bytes(`${verb}${brackets ? `<${a}>` : a}`));

/** AUTH with the right token, a wrong one, another key's, or garbage; PLAIN, LOGIN or unknown. */
export function authCommand(tokens: readonly string[]) {
  const secret = fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 30 }));
  return fc.oneof(
    fc
      .tuple(fc.constantFrom('x', '', 'user@example.com'), secret)
      .map(([user, token]) => bytes(`AUTH PLAIN ${Buffer.from(`\0${user}\0${token}`).toString('base64')}`)),
    fc.constant(bytes('AUTH PLAIN')),
    fc.constant(bytes('AUTH LOGIN')),
    secret.map((s) => bytes(Buffer.from(s).toString('base64'))),
    fc.constantFrom(
      bytes('AUTH CRAM-MD5'),
      bytes('AUTH XOAUTH2 abc'),
      bytes('AUTH PLAIN ***'),
      bytes('AUTH'),
    ),
  );
}

const simpleCommand = fc.oneof(
  fc
    .constantFrom(
      'EHLO client.example',
      'HELO client.example',
      'EHLO',
      'RSET',
      'NOOP',
      'NOOP hello',
      'HELP',
      'VRFY app@example.com',
      'EXPN list',
      'TURN',
      '',
      'GET / HTTP/1.1',
    )
    .map(bytes),
  fc
    .tuple(fc.constantFrom('EHLO ', 'HELO ', 'NOOP ', 'XCLIENT ADDR=', 'XFORWARD NAME='), randomLine(40))
    .map(([verb, arg]) => Buffer.concat([bytes(verb), arg])),
  randomLine(60),
  // Overlong lines: just over RFC 5321's 512, and over smtp-server's 16 KB command limit.
  fc.constantFrom(600, 4_000, 17_000).map((n) => bytes(`NOOP ${'x'.repeat(n)}`)),
);

/** A header value: ordinary, with NUL, CR or LF inside, 8-bit, or overlong. */
const headerValue = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom('Hello', 'app@example.com', 'Ana <ana@example.org>', '<id.1@example.com>'),
  },
  {
    weight: 3,
    arbitrary: fc.array(anyByte, { maxLength: 80 }).map((a) => Buffer.from(a).toString('latin1')),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('=?UTF-8?B?w7xiZXI=?=', '=?x?Q?bad?=', 'a\0b', 'a\rb', 'a\nb', 'a\r\n b'),
  },
  { weight: 1, arbitrary: fc.integer({ min: 990, max: 5_000 }).map((n) => 'v'.repeat(n)) },
);

const headerName = fc.oneof(
  fc.constantFrom(
    'From',
    'To',
    'Cc',
    'Bcc',
    'Subject',
    'Message-ID',
    'Date',
    'Reply-To',
    'Sender',
    'In-Reply-To',
    'References',
    'MIME-Version',
    'Content-Type',
    'Content-Transfer-Encoding',
    'Content-Disposition',
    'X-Custom',
    'Return-Path',
    'DKIM-Signature',
  ),
  fc
    .array(
      anyByte.filter((b) => b !== 0x0a && b !== 0x3a),
      { minLength: 1, maxLength: 12 },
    )
    .map((a) => Buffer.from(a).toString('latin1')),
);

const contentTypes = [
  'text/plain; charset=utf-8',
  'text/html; charset=iso-8859-1',
  'text/plain; charset=x-unknown',
  'multipart/mixed; boundary="b1"',
  'multipart/alternative; boundary=b1',
  'application/octet-stream',
];

/** A body: text, random octets, or a multipart with an attachment (sometimes an executable). */
const body = fc.oneof(
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
  fc.array(anyByte, { maxLength: 400 }).map((a) => Buffer.from(a)),
  fc
    .tuple(
      fc.constantFrom('report.pdf', 'setup.exe', 'run.js', 'a.txt'),
      fc.string({ maxLength: 40 }),
      fc.boolean(),
    )
    .map(([name, text, closed]) =>
      bytes(
        `--b1\r\nContent-Type: text/plain\r\n\r\n${text}\r\n--b1\r\nContent-Type: application/octet-stream\r\n` +
          `Content-Disposition: attachment; filename="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
          `TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAA\r\n${closed ? '--b1--\r\n' : ''}`,
      ),
    ),
  fc.integer({ min: 1, max: 120_000 }).map((n) => bytes(`${'y'.repeat(76)}\r\n`.repeat(Math.ceil(n / 78)))),
);

/** The DATA content: a sensible head (mostly) with random headers mixed in, a separator, a body. */
const content = fc
  .tuple(
    // Mostly a sensible head and no extra header: the real reader refuses a From, To or Subject
    // given twice, and the fuzz must still reach the accept path often.
    fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      { weight: 2, arbitrary: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }) },
    ),
    fc.constantFrom(...contentTypes),
    // Mostly well-formed lines and a blank line before the body, so the real reader gets past
    // the head often; bare LF, bare CR and a missing separator still come up.
    fc.oneof(
      { weight: 5, arbitrary: fc.constant('\r\n') },
      { weight: 1, arbitrary: fc.constant('\n') },
      { weight: 1, arbitrary: fc.constant('\r') },
    ),
    fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    body,
    // A Message-ID makes a resent message (the `again` step) one the server recognises.
    fc.option(fc.constantFrom('<retry.1@example.com>', '<retry.2@example.com>'), { nil: undefined }),
  )
  .map(([sensible, extra, type, eol, separated, b, messageId]) => {
    const head = [
      ...(sensible
        ? [
            ['From', 'App <app@example.com>'],
            ['To', 'ana@example.org'],
            ['Subject', 'Invoice 42'],
            ['Content-Type', type],
            ...(messageId ? [['Message-ID', messageId]] : []),
          ]
        : []),
      ...extra,
    ]
      .map(([n, v]) => `${n}: ${v}`)
      .join(eol);
    return Buffer.concat([bytes(head), bytes(separated ? `${eol}${eol}` : eol), b]);
  });

const transaction = (validMail: fc.Arbitrary<Buffer>, validRcpt: fc.Arbitrary<Buffer>) =>
  fc
    .tuple(
      fc.oneof({ weight: 3, arbitrary: validMail }, { weight: 1, arbitrary: mailCommand }),
      fc.array(fc.oneof({ weight: 3, arbitrary: validRcpt }, { weight: 1, arbitrary: rcptCommand }), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.boolean(),
      content,
      fc.constantFrom('end', 'end', 'end', 'end', 'lose-reply', 'cut'),
    )
    .map(
      ([mail, rcpts, pipelined, c, ending]): FuzzStep => ({
        kind: 'transaction',
        commands: [mail, ...rcpts, bytes('DATA')],
        pipelined,
        content: c,
        ending,
      }),
    );

/** One session's script, biased towards the path that reaches DATA so messages get recorded. */
export function sessionScript(tokens: readonly string[]) {
  const auth = authCommand(tokens);
  const validAuth = fc
    .constantFrom(...tokens.slice(0, 1))
    .map((t) => bytes(`AUTH PLAIN ${Buffer.from(`\0x\0${t}`).toString('base64')}`));
  const validMail = fc
    .constantFrom('MAIL FROM:<app@example.com>', 'MAIL FROM:<app@example.com> BODY=8BITMIME SIZE=2000')
    .map(bytes);
  const validRcpt = fc
    .constantFrom(
      'RCPT TO:<success@simulator.amazonses.com>',
      'RCPT TO:<success+2@simulator.amazonses.com>',
      'RCPT TO:<ana@example.org>',
      'RCPT TO:<gone@example.org>',
    )
    .map(bytes);
  const step: fc.Arbitrary<FuzzStep> = fc.oneof(
    { weight: 6, arbitrary: transaction(validMail, validRcpt) },
    {
      weight: 3,
      arbitrary: fc
        .oneof(simpleCommand, auth, mailCommand, rcptCommand)
        .map((b) => ({ kind: 'line', bytes: b }) as const),
    },
    {
      weight: 1,
      arbitrary: fc
        .array(fc.oneof(simpleCommand, mailCommand, rcptCommand), { minLength: 2, maxLength: 6 })
        .map((lines) => ({ kind: 'burst', lines }) as const),
    },
    { weight: 1, arbitrary: fc.boolean().map((ehlo) => ({ kind: 'starttls', ehlo }) as const) },
    { weight: 1, arbitrary: fc.constant({ kind: 'close' } as const) },
    { weight: 2, arbitrary: fc.constant({ kind: 'again' } as const) },
    { weight: 1, arbitrary: randomLine(30).map((b) => ({ kind: 'partial', bytes: b }) as const) },
  );
  const ehlo: FuzzStep = { kind: 'line', bytes: bytes('EHLO client.example') };
  const opening: fc.Arbitrary<FuzzStep[]> = fc.oneof(
    { weight: 1, arbitrary: fc.constant<FuzzStep[]>([]) },
    { weight: 2, arbitrary: fc.constant<FuzzStep[]>([ehlo]) },
    { weight: 5, arbitrary: fc.constant<FuzzStep[]>([ehlo, { kind: 'starttls', ehlo: true }]) },
  );
  return fc
    .tuple(opening, fc.option(validAuth, { nil: undefined, freq: 8 }), fc.array(step, { maxLength: 10 }))
    .map(([open, a, steps]) => [...open, ...(a ? [{ kind: 'line', bytes: a } as const] : []), ...steps]);
}
