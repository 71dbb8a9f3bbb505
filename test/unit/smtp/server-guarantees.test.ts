import '../../support/quiet-powertools.ts';
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { generate } from 'selfsigned';
import type { SMTPServer, SMTPServerDataStream } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiKey } from '../../../lambdas/domain/keys/api-key.ts';
import type { ApiKeyDirectory } from '../../../lambdas/domain/ports.ts';
import { RateLimiter } from '../../../lambdas/domain/send/rate-limit.ts';
import { BatonSmtp, readData, type SmtpOptions } from '../../../lambdas/smtp/server.ts';
import { suppression, T0 } from '../../support/builders.ts';
import { InMemoryApiKeys, InMemoryIdempotencyStore, issueApiKey } from '../../support/fakes.ts';
import { decisionOf, guardMarkOf } from '../../support/guard.ts';
import { acceptHarness } from '../../support/harness.ts';

// BatonSmtp over the in-memory fakes, on a loopback port, driven line by line: the guarantees an
// attacker (or a careless client) tries to break, each kept here once it was found broken.

const servers: SMTPServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function listening(
  options: Partial<SmtpOptions> = {},
  directory?: (keys: InMemoryApiKeys) => ApiKeyDirectory,
) {
  const { smtp, server, ...rest } = await running(options, directory);
  servers.push(server);
  return { smtp, ...rest };
}

async function running(
  options: Partial<SmtpOptions> = {},
  directory?: (keys: InMemoryApiKeys) => ApiKeyDirectory,
) {
  const harness = acceptHarness();
  const keys = new InMemoryApiKeys().add(harness.key);
  const smtp = new BatonSmtp(
    {
      ...harness.deps,
      keys,
      directory: directory?.(keys) ?? keys,
      idempotency: new InMemoryIdempotencyStore(),
      rateLimiter: new RateLimiter(harness.clock),
    },
    { hostname: 'baton.test', maxBytes: 100_000, maxJobBytes: 1_000_000, local: true, ...options },
  );
  const server = smtp.createServer(false);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { ...harness, keys, smtp, server, port: (server.server.address() as AddressInfo).port };
}

/** One client connection: write lines, read whole replies (multi-line ones joined). */
class Session {
  readonly socket: Socket;
  #buffer = '';
  #closed = false;
  #wake: Array<() => void> = [];

  constructor(port: number | Socket) {
    this.socket = typeof port === 'number' ? connect(port, '127.0.0.1') : port;
    this.socket.setEncoding('latin1');
    this.socket.on('data', (data: string) => {
      this.#buffer += data;
      for (const wake of this.#wake.splice(0)) wake();
    });
    this.socket.on('close', () => {
      this.#closed = true;
      for (const wake of this.#wake.splice(0)) wake();
    });
    this.socket.on('error', () => undefined);
  }

  async reply(): Promise<string> {
    for (;;) {
      const found = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(this.#buffer);
      if (found) {
        this.#buffer = this.#buffer.slice(found[0].length);
        return found[0].trim();
      }
      if (this.#closed) return 'closed';
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  async say(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** Greeting, EHLO and AUTH PLAIN with `token`. */
  async login(token: string): Promise<void> {
    await this.reply();
    await this.say('EHLO client.test');
    const reply = await this.say(`AUTH PLAIN ${Buffer.from(`\0app\0${token}`).toString('base64')}`);
    if (!reply.startsWith('235')) throw new Error(`AUTH failed: ${reply}`);
  }

  /** MAIL, RCPT, DATA and the message; the reply to its final dot. */
  async send(message: string, rcpt = 'ana@example.org'): Promise<string> {
    await this.say('MAIL FROM:<app@example.com>');
    await this.say(`RCPT TO:<${rcpt}>`);
    await this.say('DATA');
    return this.say(`${message}\r\n.`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The session continued over TLS after STARTTLS (the self-signed certificate is not checked). */
async function startTls(plain: Session): Promise<Session> {
  const ready = await plain.say('STARTTLS');
  if (!ready.startsWith('220')) throw new Error(`STARTTLS refused: ${ready}`);
  plain.socket.removeAllListeners('data');
  const socket = tlsConnect({ socket: plain.socket, rejectUnauthorized: false });
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  return new Session(socket);
}

const refusedFrom = [
  'From: ceo@bank.example',
  'To: ana@example.org',
  'Subject: Invoice',
  'Message-ID: <invoice-1@example.com>',
  '',
  'Pay now.',
].join('\r\n');

describe('BatonSmtp: the API key as a password', () => {
  it('offers AUTH only once STARTTLS has protected the session, so no client sends its key in clear', async () => {
    // Prepare
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
    const { port, token } = await listening({ local: false, tls: { key: pems.private, cert: pems.cert } });
    const plain = new Session(port);
    await plain.reply();

    // Act
    const before = await plain.say('EHLO client.test');
    const secure = await startTls(plain);
    const after = await secure.say('EHLO client.test');
    const auth = await secure.say(`AUTH PLAIN ${Buffer.from(`\0app\0${token}`).toString('base64')}`);
    secure.close();

    // Assess
    expect(before).toContain('STARTTLS');
    expect(before).not.toContain('AUTH');
    expect(after).toContain('250-AUTH PLAIN LOGIN');
    expect(auth).toMatch(/^235 /);
  });
});

describe("BatonSmtp: AUTH in words an SMTP client's operator can act on", () => {
  it('says the key goes in the password when a client sends it as the user name', async () => {
    // Prepare
    const { port, token } = await listening();
    const session = new Session(port);
    await session.reply();
    await session.say('EHLO client.test');

    // Act
    const reply = await session.say(`AUTH PLAIN ${Buffer.from(`\0${token}\0`).toString('base64')}`);
    session.close();

    // Assess
    expect(reply).toMatch(/^535 5\.7\.8 /);
    expect(reply).not.toMatch(/Authorization header|Bearer/);
    expect(reply).toContain('password');
  });
});

describe('BatonSmtp: failed logins from a network a key relays for without AUTH', () => {
  it('still lets the relayed devices in, and refuses only the logins', async () => {
    // Prepare: a scanner relays without AUTH from 127.0.0.0/8; someone else there guesses keys
    const { port, keys } = await listening({ maxAuthFailures: 2 });
    await keys.create(
      issueApiKey({
        tenant: 'printers',
        allowedCidrs: ['127.0.0.0/8'],
        smtpWithoutAuth: true,
        senderPolicy: 'rewrite',
        defaultFrom: 'relay@example.com',
      }).key,
    );
    for (let i = 0; i < 2; i++) {
      const guess = new Session(port);
      await guess.reply();
      await guess.say('EHLO guesser.test');
      await guess.say(`AUTH PLAIN ${Buffer.from('\0x\0bt_wrong').toString('base64')}`);
      guess.close();
    }

    // Act
    const scanner = new Session(port);
    const greeting = await scanner.reply();
    await scanner.say('EHLO scanner.test');
    const mail = await scanner.say('MAIL FROM:<scan@printer.lan>');
    const login = await scanner.say(`AUTH PLAIN ${Buffer.from('\0x\0bt_wrong').toString('base64')}`);
    scanner.close();

    // Assess
    expect(greeting).toMatch(/^220 /);
    expect(mail).toMatch(/^250 /);
    expect(login).toMatch(/^421 4\.7\.0 Too many failed logins/);
  });
});

describe('BatonSmtp: a client that resends a message', () => {
  it('gets the same refusal for a resent refused message, not a 451 that makes it retry for a day', async () => {
    // Prepare
    const { port, token, queue } = await listening();
    const first = new Session(port);
    await first.login(token);
    const refusal = await first.send(refusedFrom);
    first.close();

    // Act
    const again = new Session(port);
    await again.login(token);
    const resent = await again.send(refusedFrom);
    again.close();

    // Assess
    expect(refusal).toMatch(/^550 5\.7\.1 .*bank\.example/);
    expect(resent).toBe(refusal);
    expect(queue.jobs).toEqual([]);
  });
});

describe('BatonSmtp: a resend while the first copy is still being recorded', () => {
  it('waits for the first copy rather than recording a second one, however long the first takes', async () => {
    // Prepare: recording takes longer than the api's 15 s idempotency lock (a slow queue; an SMTP
    // server has no 10 s function timeout to end it)
    const { port, token, queue, clock } = await listening();
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const enqueue = queue.enqueue.bind(queue);
    queue.enqueue = async (lane, job) => {
      await gate;
      return enqueue(lane, job);
    };
    const message = [
      'From: app@example.com',
      'To: ana@example.org',
      'Subject: Hi',
      'Message-ID: <slow@example.com>',
      '',
      'Hi.',
    ].join('\r\n');
    const first = new Session(port);
    await first.login(token);
    const firstReply = first.send(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
    clock.advance(16_000);

    // Act: the client lost the first connection and sends the message again
    const again = new Session(port);
    await again.login(token);
    const againReply = again.send(message);
    await new Promise((resolve) => setTimeout(resolve, 300));
    release();
    const replies = await Promise.all([firstReply, againReply]);
    first.close();
    again.close();

    // Assess
    expect(replies).toEqual(['250 2.6.0 Ok: queued as msg_1', '250 2.6.0 Ok: queued as msg_1']);
    expect(queue.jobs).toHaveLength(1);
  });
});

describe('BatonSmtp: a drain (a deploy, a scale-in)', () => {
  it('answers a message it is still recording when the drain time is up, before closing the session', async () => {
    // Prepare: the queue is slow (SQS retrying), slower than the drain time
    const { smtp, port, token, queue } = await running({ drainMs: 200 });
    const enqueue = queue.enqueue.bind(queue);
    queue.enqueue = async (lane, job) => {
      await new Promise((resolve) => setTimeout(resolve, 600));
      return enqueue(lane, job);
    };
    const session = new Session(port);
    await session.login(token);
    await session.say('MAIL FROM:<app@example.com>');
    await session.say('RCPT TO:<ana@example.org>');
    await session.say('DATA');
    // No Message-ID: a resend after a lost reply could not be recognised, and would go out twice
    session.socket.write('From: app@example.com\r\nTo: ana@example.org\r\nSubject: Hi\r\n\r\nHi.\r\n.\r\n');
    await new Promise((resolve) => setTimeout(resolve, 50));

    // Act
    const drained = smtp.drain();
    const reply = await session.reply();
    await drained;

    // Assess
    expect(reply).toMatch(/^250 2\.6\.0 Ok: queued as msg_1$/);
    expect(queue.jobs).toHaveLength(1);
  });
});

describe('BatonSmtp: a drain, seen by an idle session', () => {
  it('answers its next command 421 4.3.2 in words that say to retry on a new connection', async () => {
    // Prepare
    const { smtp, port, token } = await running({ drainMs: 200 });
    const session = new Session(port);
    await session.login(token);
    await session.say('MAIL FROM:<app@example.com>');
    await session.say('RCPT TO:<ana@example.org>');

    // Act
    const drained = smtp.drain();
    const reply = await session.say('DATA');
    await drained;

    // Assess
    expect(reply).toBe('421 4.3.2 Baton is restarting; retry on a new connection');
  });
});

describe('BatonSmtp: a key shut off mid-session', () => {
  it('refuses the message of a transaction begun before its key was suspended', async () => {
    // Prepare
    const { port, token, key, keys, queue } = await listening();
    const session = new Session(port);
    await session.login(token);
    await session.say('MAIL FROM:<app@example.com>');
    await session.say('RCPT TO:<ana@example.org>');

    // Act: the operator suspends the key (a leaked password); the open transaction goes on
    await keys.setStatus(key.keyId, 'suspended');
    await session.say('DATA');
    const reply = await session.say(
      ['From: app@example.com', 'To: ana@example.org', 'Subject: Hi', '', 'Hi.'].join('\r\n').concat('\r\n.'),
    );
    session.close();

    // Assess
    expect(reply).toMatch(/^550 5\.7\.1 This API key is suspended/);
    expect(queue.jobs).toEqual([]);
  });
});

describe('BatonSmtp: the abuse guard', () => {
  const NOW = new Date(T0);
  const plain = ['From: app@example.com', 'To: ana@example.org', 'Subject: Hi', '', 'Hi.'].join('\r\n');

  it('answers MAIL FROM 451 4.7.1 in the guard’s words while the key is throttled', async () => {
    // Prepare
    const throttle = decisionOf('throttleKey', NOW);
    const { port, keys } = await listening();
    const { key, token } = issueApiKey({ guard: guardMarkOf(throttle) });
    keys.add(key);
    const session = new Session(port);
    await session.login(token);

    // Act
    const reply = await session.say('MAIL FROM:<app@example.com>');
    session.close();

    // Assess
    expect(reply).toBe(
      // The reason's "10 ×" in ASCII, as a reply line must be.
      `451 4.7.1 The abuse guard throttled this API key (volumeSpike): ${throttle.reason.replace('×', 'x')}. Retry in 3600 s.`,
    );
  });

  it('answers 451 4.7.1 at the end of DATA when a throttle started mid-transaction, and queues nothing', async () => {
    // Prepare
    const { port, token, key, keys, queue, held } = await listening();
    const session = new Session(port);
    await session.login(token);
    await session.say('MAIL FROM:<app@example.com>');
    await session.say('RCPT TO:<ana@example.org>');
    await session.say('DATA');

    // Act: the guard throttles the key while its message is on the way
    keys.add({ ...key, guard: guardMarkOf(decisionOf('throttleKey', NOW)) });
    const reply = await session.say(`${plain}\r\n.`);
    session.close();

    // Assess
    expect(reply).toMatch(
      /^451 4\.7\.1 The abuse guard throttled this API key \(volumeSpike\): volume spike/,
    );
    expect(queue.jobs).toEqual([]);
    expect(held.entries.size).toBe(0);
  });

  it('refuses AUTH 535 5.7.8 for a key the guard suspended, naming the signal and the way back', async () => {
    // Prepare
    const suspension = decisionOf('suspendKey', NOW);
    const { port, keys } = await listening();
    const { key, token } = issueApiKey({ status: 'suspended', guard: guardMarkOf(suspension) });
    keys.add(key);
    const session = new Session(port);
    await session.reply();
    await session.say('EHLO client.test');

    // Act
    const reply = await session.say(`AUTH PLAIN ${Buffer.from(`\0app\0${token}`).toString('base64')}`);
    session.close();

    // Assess
    expect(reply).toBe(
      `535 5.7.8 Authentication refused: This API key was suspended by the abuse guard (suppressedHitRate): ${suspension.reason}. ` +
        `An operator can resume it: npm run guard -- resume --key ${key.keyId} --reason "<why>".`,
    );
    expect(reply.length).toBeLessThanOrEqual(510);
  });

  it('refuses MAIL FROM 554 5.7.1 in the guard’s words once the guard suspended the key mid-session', async () => {
    // Prepare
    const suspension = decisionOf('suspendKey', NOW);
    const { port, token, key, keys, queue } = await listening();
    const session = new Session(port);
    await session.login(token);

    // Act
    keys.add({ ...key, status: 'suspended', guard: guardMarkOf(suspension) });
    const reply = await session.say('MAIL FROM:<app@example.com>');
    session.close();

    // Assess
    expect(reply).toBe(
      `554 5.7.1 This API key was suspended by the abuse guard (suppressedHitRate): ${suspension.reason}. ` +
        `An operator can resume it: npm run guard -- resume --key ${key.keyId} --reason "<why>".`,
    );
    expect(queue.jobs).toEqual([]);
  });

  it('answers 250 "held" for a message the guard holds, and keeps its job', async () => {
    // Prepare
    const { port, keys, queue, held } = await listening();
    const { key, token } = issueApiKey({ guard: guardMarkOf(decisionOf('holdAll', NOW)) });
    keys.add(key);
    const session = new Session(port);
    await session.login(token);

    // Act
    const reply = await session.send(plain);
    session.close();

    // Assess
    expect(reply).toMatch(
      /^250 2\.6\.0 Ok: recorded as msg_\d+ and held by the abuse guard; it is not sent unless an operator releases it$/,
    );
    expect(queue.jobs).toEqual([]);
    expect([...held.entries.values()].map((e) => e.job.keyId)).toEqual([key.keyId]);
  });

  it('tells the guard of a message refused for its content, per envelope recipient', async () => {
    // Prepare
    const { port, token, guard } = await listening();
    const session = new Session(port);
    await session.login(token);
    const withExecutable = [
      'From: app@example.com',
      'To: ana@example.org',
      'Subject: Invoice',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'See attached.',
      '--b',
      'Content-Type: application/octet-stream',
      'Content-Disposition: attachment; filename="setup.exe"',
      'Content-Transfer-Encoding: base64',
      '',
      'TVqQAAMAAAAEAAAA',
      '--b--',
    ].join('\r\n');

    // Act
    const reply = await session.send(withExecutable);
    session.close();

    // Assess
    expect(reply).toMatch(/^554 5\.7\.1 /);
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [{ address: 'ana@example.org', outcome: 'refused' }],
    ]);
  });

  it('tells the guard of every recipient of a transaction refused at RCPT as suppressed', async () => {
    // Prepare
    const { port, token, guard, suppressions } = await listening();
    suppressions.seed(suppression('gone@example.org'));
    const session = new Session(port);
    await session.login(token);
    await session.say('MAIL FROM:<app@example.com>');
    await session.say('RCPT TO:<gone@example.org>');

    // Act: the next transaction ends this one
    await session.say('RSET');
    await session.say('MAIL FROM:<app@example.com>');
    session.close();

    // Assess
    expect(guard.accepts.map((a) => a.recipients)).toEqual([
      [{ address: 'gone@example.org', outcome: 'suppressed' }],
    ]);
  });
});

/** A message of about 60 kB: its head, then 60 lines of 998 `fill` characters. */
const largeMessage = (fill: string): string =>
  ['From: app@example.com', 'To: ana@example.org', 'Subject: Scan', '', ''].join('\r\n') +
  `${fill.repeat(998)}\r\n`.repeat(60);

/** A client logged in with `token` that has sent all of `largeMessage('a')` after DATA but not the final dot. */
async function halfwayThroughData(port: number, token: string): Promise<Session> {
  const slow = new Session(port);
  await slow.login(token);
  await slow.say('MAIL FROM:<app@example.com>');
  await slow.say('RCPT TO:<ana@example.org>');
  await slow.say('DATA');
  slow.socket.write(largeMessage('a'));
  return slow;
}

describe('BatonSmtp: resources a client can make it hold', () => {
  it('keeps no more of a message than SIZE allows while the client sends more', async () => {
    // Prepare: what smtp-server does, writing on past the limit and only flagging it
    const stream = Object.assign(new PassThrough(), {
      byteLength: 0,
      sizeExceeded: false,
    }) as unknown as SMTPServerDataStream;
    const reading = readData(stream);

    // Act
    stream.write(Buffer.alloc(1000, 'a'));
    stream.sizeExceeded = true;
    for (let i = 0; i < 100; i++) stream.write(Buffer.alloc(1000, 'b'));
    stream.end();

    // Assess
    const { bytes } = await reading;
    expect(bytes.length).toBeLessThanOrEqual(1000);
  });

  it('answers 552 to a message over SIZE and takes the next one on the same connection', async () => {
    // Prepare
    const { port, token, queue } = await listening({ maxBytes: 10_000 });
    const session = new Session(port);
    await session.login(token);
    const big = ['From: app@example.com', 'To: ana@example.org', 'Subject: Big', '', 'x'.repeat(900)]
      .join('\r\n')
      .concat('\r\n', `${'y'.repeat(998)}\r\n`.repeat(200));

    // Act
    const refused = await session.send(big.trimEnd());
    const accepted = await session.send(
      ['From: app@example.com', 'To: ana@example.org', 'Subject: Small', '', 'Hi.'].join('\r\n'),
    );
    session.close();

    // Assess
    expect(refused).toMatch(/^552 5\.3\.4 /);
    expect(accepted).toMatch(/^250 2\.6\.0 Ok: queued as msg_1$/);
    expect(queue.jobs).toHaveLength(1);
  });

  it('answers 451 to a message that would take the server past the bytes it holds at once, and takes it on a retry', async () => {
    // Prepare: one client is half-way through a large message
    const { port, token, queue } = await listening({ maxBytes: 100_000, maxHeldBytes: 100_000 });
    const slow = await halfwayThroughData(port, token);
    await new Promise((resolve) => setTimeout(resolve, 100));

    // Act: others send theirs meanwhile (a flood of large messages from many sources, say)
    const other = new Session(port);
    await other.login(token);
    const refused = await other.send(largeMessage('b'));
    const finished = await slow.say('.');
    const retried = await other.send(largeMessage('b'));
    slow.close();
    other.close();

    // Assess
    expect(refused).toMatch(/^451 4\.3\.1 /);
    expect(finished).toMatch(/^250 2\.6\.0 Ok: queued as msg_1$/);
    expect(retried).toMatch(/^250 2\.6\.0 Ok: queued as msg_2$/);
    expect(queue.jobs).toHaveLength(2);
  });

  it('lets go of the bytes of a message that takes longer than the DATA time, so a stalled client cannot keep others out', async () => {
    // Prepare: a client sends most of a large message, then trickles
    const { port, token, queue } = await listening({
      maxBytes: 100_000,
      maxHeldBytes: 100_000,
      dataTimeoutMs: 300,
    });
    const slow = await halfwayThroughData(port, token);
    await new Promise((resolve) => setTimeout(resolve, 400));
    slow.socket.write('a');
    await new Promise((resolve) => setTimeout(resolve, 50));

    // Act
    const other = new Session(port);
    await other.login(token);
    const accepted = await other.send(largeMessage('b'));
    const late = await slow.say('\r\n.');
    slow.close();
    other.close();

    // Assess
    expect(accepted).toMatch(/^250 2\.6\.0 Ok: queued as msg_1$/);
    expect(late).toMatch(/^451 4\.3\.1 /);
    expect(queue.jobs).toHaveLength(1);
  });

  it('holds the per-source connection limit when connections arrive while the key list is read', async () => {
    // Prepare: a directory read that takes a while (a cache miss: a DynamoDB Scan)
    const { port } = await listening({ maxConnectionsPerSource: 3 }, (keys) => ({
      list: async (): Promise<ApiKey[]> => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return keys.list();
      },
    }));

    // Act
    const sessions = Array.from({ length: 12 }, () => new Session(port));
    const greetings = await Promise.all(sessions.map((s) => s.reply()));
    for (const s of sessions) s.close();

    // Assess
    expect(greetings.filter((g) => g.startsWith('220'))).toHaveLength(3);
    expect(greetings.filter((g) => g.startsWith('421 4.7.0 Too many connections'))).toHaveLength(9);
  });

  it('frees the slot of a client that hung up while the key list was read', async () => {
    // Prepare
    const { port } = await listening({ maxConnectionsPerSource: 1 }, (keys) => ({
      list: async (): Promise<ApiKey[]> => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return keys.list();
      },
    }));
    const gone = new Session(port);
    await new Promise((resolve) => setTimeout(resolve, 10));
    gone.close();
    await new Promise((resolve) => setTimeout(resolve, 150));

    // Act
    const next = new Session(port);
    const greeting = await next.reply();
    next.close();

    // Assess
    expect(greeting).toMatch(/^220 /);
  });
});
