import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

// `npm start` as a newcomer runs it: a separate process, stopped with Ctrl-C (SIGINT).
const START = join(import.meta.dirname, '../../local/start.ts');

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(env: Record<string, string>): Started {
  let output = '';
  const child = spawn(process.execPath, [START], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  // A child that could not be spawned never exits: its 'error' ends the wait too, with the reason.
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', (error) => {
      output += `\nspawn failed: ${error.message}`;
      resolve(null);
    });
  });
  return { child, output: () => output, exited };
}

/** The child's exit code, or a failure showing what it printed when it has not exited in time. */
async function exitOf(started: Started, timeoutMs = 60_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`npm start has not exited in ${timeoutMs} ms; output:\n${started.output()}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([started.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(started: Started, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!started.output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`"${text}" never appeared; output:\n${started.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const dirs: string[] = [];
const children: ChildProcess[] = [];
let blocker: Server | undefined;

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  blocker?.close();
  blocker = undefined;
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-start-'));
  dirs.push(dir);
  return dir;
}

describe('npm start', () => {
  it('prints the URL and a development key, serves the API, and stops cleanly on Ctrl-C', async () => {
    const started = start({
      BATON_PORT: '0',
      BATON_SMTP_PORT: '0',
      BATON_STATE_DIR: stateDir(),
      BATON_API_KEY: 'bt_startkey0001_abcdefghijklmnopqrstuvwxyz012345',
    });
    children.push(started.child);

    await until(started, 'Ctrl-C stops');
    const url = /API\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(started.output())?.[1];
    expect(url).toBeDefined();
    expect(started.output()).toContain('bt_startkey0001_abcdefghijklmnopqrstuvwxyz012345');
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    // The local console beside the API (issue 15).
    expect(started.output()).toContain(`Console    ${url}/console`);
    expect((await fetch(`${url}/console`)).status).toBe(200);
    // The SMTP settings to paste into an app: host, port, STARTTLS, any user, the key as password.
    const smtpPort = /SMTP[^\n]*\n\s+Host\s+127\.0\.0\.1\s+Port (\d+)\s+Security STARTTLS/.exec(
      started.output(),
    )?.[1];
    expect(smtpPort).toBeDefined();
    expect(started.output()).toMatch(
      /User\s+any name \(or the key id\)\n\s+Password\s+bt_startkey0001_abcdefghijklmnopqrstuvwxyz012345\n/,
    );
    const greeting = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(smtpPort), '127.0.0.1');
      socket.once('data', (d) => {
        resolve(d.toString());
        socket.end();
      });
      socket.once('error', reject);
    });
    expect(greeting).toMatch(/^220 /);

    started.child.kill('SIGINT');
    const code = await started.exited;

    expect(code).toBe(0);
    expect(started.output()).toContain('Stopped.');
    await expect(fetch(`${url}/health`)).rejects.toThrow(/fetch failed/);
  });

  it('explains which variable to change when the port is taken, and exits non-zero', async () => {
    blocker = createServer();
    const port = await new Promise<number>((resolve) =>
      blocker?.listen(0, '127.0.0.1', () => {
        const address = blocker?.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      }),
    );
    const started = start({ BATON_PORT: String(port), BATON_SMTP_PORT: '0', BATON_STATE_DIR: stateDir() });
    children.push(started.child);

    const code = await exitOf(started);

    expect(code).toBe(1);
    expect(started.output()).toContain(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
    expect(started.output()).toContain('BATON_PORT=<port>');
  });

  it('refuses a BATON_DOMAINS entry the local deployment does not send from, naming the ones it does', async () => {
    const started = start({
      BATON_PORT: '0',
      BATON_SMTP_PORT: '0',
      BATON_STATE_DIR: stateDir(),
      BATON_DOMAINS: 'example.com,example.org',
      BATON_SENDING_DOMAINS: 'example.com',
    });
    children.push(started.child);

    const code = await exitOf(started);

    expect(code).toBe(1);
    expect(started.output()).toContain(
      'BATON_DOMAINS: example.org is not covered by local mode (BATON_SENDING_DOMAINS), which sends from example.com',
    );
  });
});
