/**
 * The SMTP front door (lambdas/smtp/server.ts) in this process on 127.0.0.1, over the in-memory
 * fakes, and the real clients that talk to it: swaks and Python's smtplib as their own processes,
 * nodemailer's SMTP transport in this one. Nothing is mocked at the protocol: every byte crosses a
 * real socket, and what a test asserts is what the client saw and what the fakes hold.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import type { SMTPServer } from 'smtp-server';
import { vi } from 'vitest';
import type { ApiKey } from '../../lambdas/domain/keys/api-key.ts';
import type { MessageRecord, SendJob } from '../../lambdas/domain/message.ts';
import { RateLimiter } from '../../lambdas/domain/send/rate-limit.ts';
import { logger } from '../../lambdas/shared/observability.ts';
import { BatonSmtp, type SmtpOptions } from '../../lambdas/smtp/server.ts';
import { developmentCertificate } from '../../local/smtp.ts';
import { InMemoryApiKeys, InMemoryIdempotencyStore, issueApiKey } from './fakes.ts';
import { acceptHarness, type HarnessStores, type KeyOverrides } from './harness.ts';

export const SMTP_HOST = '127.0.0.1';

/** A self-signed pair for localhost and 127.0.0.1 (local mode's own generator), made once per file. */
let certificate: { cert: string; key: string; certFile: string } | undefined;
export async function testCertificate(): Promise<{ cert: string; key: string; certFile: string }> {
  if (!certificate) {
    const files = await developmentCertificate(mkdtempSync(join(tmpdir(), 'baton-smtp-cert-')));
    certificate = {
      cert: readFileSync(files.certFile, 'utf8'),
      key: readFileSync(files.keyFile, 'utf8'),
      certFile: files.certFile,
    };
  }
  return certificate;
}

export interface SmtpRigOptions extends Partial<Omit<SmtpOptions, 'tls'>>, HarnessStores {
  /** The first key's settings (tenant-a, send scope, example.com, policy reject by default). */
  readonly key?: KeyOverrides;
  /** Without a certificate: no STARTTLS, no port 465. @default true */
  readonly tls?: boolean;
}

/** One BatonSmtp, listening on a free port (STARTTLS) and another (implicit TLS), over fakes. */
export async function startSmtpRig(options: SmtpRigOptions = {}) {
  const { key: keyOverrides, tls: withTls = true, messages, suppressions, ...smtpOptions } = options;
  const harness = acceptHarness(keyOverrides, {
    ...(messages ? { messages } : {}),
    ...(suppressions ? { suppressions } : {}),
  });
  // Every id handed out, so a test can find the records even when a failed accept used one up.
  const issued: string[] = [];
  const newId = () => {
    const id = harness.deps.newId();
    issued.push(id);
    return id;
  };
  const keys = new InMemoryApiKeys();
  keys.add(harness.key);
  const idempotency = new InMemoryIdempotencyStore();
  const pair = withTls ? await testCertificate() : undefined;
  const smtp = new BatonSmtp(
    {
      ...harness.deps,
      newId,
      keys,
      // The store's list has no hashes; the relay checks read what `get` returns, as a full key.
      directory: {
        list: async () =>
          (await Promise.all((await keys.list()).map((k) => keys.get(k.keyId)))).filter(
            (k): k is ApiKey => k !== undefined,
          ),
      },
      rateLimiter: new RateLimiter(harness.clock),
      idempotency,
    },
    {
      hostname: 'baton.test',
      maxBytes: 1024 * 1024,
      maxJobBytes: 4 * 1024 * 1024,
      local: false,
      // A test's last client has hung up by then; a drain must not hold afterAll for 25 s.
      drainMs: 2_000,
      ...(pair ? { tls: { cert: pair.cert, key: pair.key } } : {}),
      ...smtpOptions,
    },
  );
  const servers: SMTPServer[] = [];
  const listen = async (implicitTls: boolean): Promise<number> => {
    const server = smtp.createServer(implicitTls);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, SMTP_HOST, () => resolve()));
    return (server.server.address() as AddressInfo).port;
  };
  const port = await listen(false);
  const tlsPort = pair ? await listen(true) : undefined;
  return {
    ...harness,
    keys,
    idempotency,
    smtp,
    port,
    tlsPort,
    certFile: pair?.certFile,
    /** Issues another key on the same server: its token and stored item. */
    addKey(overrides: KeyOverrides = {}): { token: string; key: ApiKey } {
      const made = issueApiKey(overrides);
      keys.add(made.key);
      return made;
    },
    /** The queued job of a message id. */
    jobFor(id: string): SendJob | undefined {
      return harness.queue.jobs.find((j) => j.job.id === id)?.job;
    },
    /** Every message record, in the order they were made. */
    records(): MessageRecord[] {
      return issued.map((id) => harness.messages.peek(id)).filter((r): r is MessageRecord => r !== undefined);
    },
    async close(): Promise<void> {
      await smtp.drain();
    },
    servers,
  };
}

export type SmtpRig = Awaited<ReturnType<typeof startSmtpRig>>;

export interface ClientRun {
  /** The exit status (null when killed by the timeout). */
  readonly status: number | null;
  /** Everything the client printed, stdout then stderr interleaved: swaks prints the whole session. */
  readonly transcript: string;
}

/**
 * Runs a client as its own process. Never spawnSync: the server answers from this same event loop.
 * A client that outlives `timeoutMs` is killed (status null), so a hung session fails its test.
 */
export function runClient(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<ClientRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env } });
    let out = '';
    const take = (d: Buffer) => {
      out += d.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        error.code === 'ENOENT'
          ? new Error(
              `${command} is not installed: the SMTP tests need swaks and /usr/bin/python3 (.ci/run installs them)`,
              { cause: error },
            )
          : error,
      );
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, transcript: out });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * swaks against the rig. Its transcript marks what the client sent `->` / `~>` (TLS) and what the
 * server answered `<-` / `<~`, with `<**` / `<~*` for an error reply.
 */
export function swaks(
  rig: Pick<SmtpRig, 'port'>,
  args: readonly string[],
  options: { port?: number; timeoutMs?: number } = {},
): Promise<ClientRun> {
  return runClient(
    'swaks',
    ['--server', `${SMTP_HOST}:${options.port ?? rig.port}`, '--timeout', '20', ...args],
    options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
  );
}

/** swaks's arguments for one message from the rig's key over STARTTLS. */
export function swaksMessage(
  token: string,
  overrides: { from?: string; to?: string; extra?: readonly string[] } = {},
): string[] {
  return [
    '--tls',
    '--auth',
    'PLAIN',
    '--auth-user',
    'app',
    '--auth-password',
    token,
    '--from',
    overrides.from ?? 'app@example.com',
    '--to',
    overrides.to ?? 'ana@example.org',
    ...(overrides.extra ?? []),
  ];
}

/** The system Python (its standard library only). */
export const PYTHON = '/usr/bin/python3';

/**
 * What every Python client script starts with: the rig's port, key and certificate from the
 * environment, `connect()` (smtplib, STARTTLS verifying the rig's certificate, AUTH) and `Raw`, a
 * socket that sends exactly the bytes given, for what smtplib will not do (pipelining, abuse,
 * hanging up mid-DATA).
 */
const PRELUDE = String.raw`
import base64, os, smtplib, socket, ssl, sys, time
PORT = int(os.environ['SMTP_PORT'])
TLS_PORT = int(os.environ.get('SMTP_TLS_PORT') or 0)
TOKEN = os.environ.get('SMTP_TOKEN', '')
CERT = os.environ.get('SMTP_CERT')
def say(*parts):
    print(*parts, flush=True)
def context():
    return ssl.create_default_context(cafile=CERT)
def connect(tls=True, auth=True, token=None):
    s = smtplib.SMTP('127.0.0.1', PORT, local_hostname='client.test', timeout=20)
    s.ehlo()
    if tls:
        s.starttls(context=context())
        s.ehlo()
    if auth:
        s.login('app', token or TOKEN)
    return s
def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.02)
class Raw:
    def __init__(self, tls=True, port=None):
        self.sock = socket.create_connection(('127.0.0.1', port or PORT), timeout=20)
        self.file = self.sock.makefile('rb')
        self.greeting = self.reply()
        if tls:
            self.ehlo = self.cmd('EHLO client.test')
            assert self.cmd('STARTTLS')[0] == 220
            self.sock = context().wrap_socket(self.sock, server_hostname='127.0.0.1')
            self.file = self.sock.makefile('rb')
            self.ehlo = self.cmd('EHLO client.test')
    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())
    def reply(self):
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                return (None, lines)
            text = line.decode('utf-8', 'replace').rstrip('\r\n')
            lines.append(text)
            if len(text) < 4 or text[3] != '-':
                return (int(text[:3]), lines)
    def cmd(self, line):
        self.send(line + '\r\n')
        return self.reply()
    def close(self):
        # socket.close() alone leaves the connection open while makefile() holds a reference.
        self.file.close()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
    def auth(self, token=None):
        blob = base64.b64encode(b'\0app\0' + (token or TOKEN).encode()).decode()
        return self.cmd('AUTH PLAIN ' + blob)
`;

/**
 * Runs a Python client script (after PRELUDE) against the rig. `env` adds variables (a file to
 * wait for, another key).
 */
export function python(
  rig: Pick<SmtpRig, 'port' | 'tlsPort' | 'certFile' | 'token'>,
  script: string,
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<ClientRun> {
  return runClient(PYTHON, ['-c', `${PRELUDE}\n${script}`], {
    env: {
      SMTP_PORT: String(rig.port),
      SMTP_TLS_PORT: String(rig.tlsPort ?? ''),
      SMTP_CERT: rig.certFile ?? '',
      SMTP_TOKEN: rig.token,
      ...env,
    },
    timeoutMs,
  });
}

/** nodemailer's SMTP transport: STARTTLS required, the rig's certificate trusted, AUTH with `token`. */
export function nodemailerTransport(rig: Pick<SmtpRig, 'port' | 'certFile'>, token: string) {
  if (!rig.certFile) throw new Error('nodemailer tests need the rig with TLS');
  return nodemailer.createTransport({
    host: SMTP_HOST,
    port: rig.port,
    secure: false,
    requireTLS: true,
    tls: { ca: readFileSync(rig.certFile, 'utf8'), servername: 'localhost' },
    auth: { user: 'app', pass: token },
  });
}

/** The reply swaks got last (QUIT's 221 aside): the one to the command it gave up at, or to DATA. */
export function lastReply(transcript: string): string {
  return (
    replies(transcript)
      .filter((r) => !/^221 /.test(r))
      .at(-1) ?? ''
  );
}

/** The lines a Python script printed with say(). */
export function said(transcript: string): string[] {
  return transcript.trim().split('\n');
}

/** The Baton message id in a `250 ... queued as msg_...` reply ('' when there is none). */
export function queuedId(reply: string | undefined): string {
  return /queued as (msg_\w+)/.exec(reply ?? '')?.[1] ?? '';
}

/** Every address a job sends to (To, Cc and Bcc), sorted. */
export function destinations(job: SendJob | undefined): string[] {
  return [...(job?.message.to ?? []), ...(job?.message.cc ?? []), ...(job?.message.bcc ?? [])]
    .map((m) => m.address)
    .sort();
}

/** The server's replies in a swaks transcript (`<-`, `<**`, `<~`, `<~*` lines), without the marks. */
export function replies(transcript: string): string[] {
  return transcript
    .split('\n')
    .filter((line) => /^\s*<(-|\*\*|~|~\*)\s/.test(line))
    .map((line) => line.replace(/^\s*<(-|\*\*|~|~\*)\s+/, '').trimEnd());
}

/**
 * Runs `act` with the server's log lines (Powertools: info on stdout, warnings and errors on
 * stderr) captured at level INFO instead of printed; returns them with what `act` returned.
 * `act` may read what was logged so far (to wait for a line).
 */
export async function withLogs<T>(
  act: (logSoFar: () => string) => Promise<T>,
): Promise<{ result: T; log: string }> {
  const written: string[] = [];
  const level = logger.getLevelName();
  logger.setLogLevel('INFO');
  const capture = (chunk: unknown) => {
    written.push(String(chunk));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture),
  ];
  try {
    const result = await act(() => written.join(''));
    return { result, log: written.join('') };
  } finally {
    for (const spy of spies) spy.mockRestore();
    logger.setLogLevel(level);
  }
}
