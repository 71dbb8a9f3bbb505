/**
 * Protocol abuse against the SMTP front door, from a raw socket in Python: oversized lines and
 * messages, NUL bytes, commands inside DATA, STARTTLS twice, malformed AUTH, 10,000 RCPTs,
 * pipelined garbage, connection bursts. The server must answer (or hang up) and keep serving,
 * and no message may be half-queued: every record that says queued has its job, every job its
 * record.
 */
import '../support/quiet-powertools.ts';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { python, type SmtpRig, said, startSmtpRig } from '../support/smtp.ts';

let rig: SmtpRig;
beforeAll(async () => {
  rig = await startSmtpRig({ maxBytes: 1024 * 1024, socketTimeoutMs: 10_000 });
});
afterAll(async () => {
  await rig?.close();
});

/** No message is half-queued: every record that says queued has its job, every job its record. */
function nothingHalfQueued(target: SmtpRig): void {
  const jobs = new Set(target.queue.jobs.map((j) => j.job.id));
  for (const record of target.records()) {
    if (record.phase === 'queued') expect(jobs.has(record.id)).toBe(true);
  }
  for (const id of jobs) expect(target.messages.peek(id)).toBeDefined();
}

describe('protocol abuse', () => {
  afterEach(() => {
    nothingHalfQueued(rig);
  });

  it('hangs up on a 5 MB command line with 421, with or without a line end', async () => {
    const run = await python(
      rig,
      `
r = Raw()
r.send('EHLO ' + 'a' * (5 * 1024 * 1024) + '\\r\\n')
say(r.reply()[1][-1])
r = Raw(tls=False)
r.send('X' * (5 * 1024 * 1024))
say(r.reply()[1][-1])
`,
    );
    expect(said(run.transcript)).toEqual(Array(2).fill('421 4.4.2 Error: Command line too long'));
  });

  it('refuses NUL bytes in commands and in headers with words, and keeps the session', async () => {
    const run = await python(
      rig,
      `
r = Raw()
r.auth()
say(r.cmd('MAIL FROM:<app@exa\\x00mple.com>')[0])
say(r.cmd('RCPT TO:<a\\x00b@example.org>')[0])
say(r.cmd('\\x00\\x00\\x00')[0])
say(r.cmd('MAIL FROM:<app@example.com>')[0])
r.cmd('RCPT TO:<nul@example.org>'); r.cmd('DATA')
r.send(b'From: app@example.com\\r\\nSubject: nul\\x00here\\r\\n\\r\\nbody \\x00 with a nul\\r\\n.\\r\\n')
say(r.reply()[1][-1])
`,
    );
    const lines = said(run.transcript);
    expect(lines.slice(0, 4)).toEqual(['501', '501', '500', '250']);
    expect(lines[4]).toMatch(/^554 5\.6\.0 Message refused: headers\.Subject: .*NUL/);
  });

  it('takes commands sent inside DATA as message text, not as commands', async () => {
    const before = rig.queue.jobs.length;
    const run = await python(
      rig,
      `
r = Raw()
r.auth()
r.cmd('MAIL FROM:<app@example.com>'); r.cmd('RCPT TO:<inside@example.org>'); r.cmd('DATA')
r.send('Subject: inside\\r\\n\\r\\nMAIL FROM:<evil@example.com>\\r\\nRCPT TO:<victim@example.org>\\r\\nQUIT\\r\\nSTARTTLS\\r\\n.\\r\\n')
say(r.reply()[1][-1])
say(r.cmd('NOOP')[0])
`,
    );
    const [reply, noop] = said(run.transcript);
    expect(reply).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    expect(noop).toBe('250');
    expect(rig.queue.jobs).toHaveLength(before + 1);
    const message = rig.queue.jobs.at(-1)?.job.message;
    expect([...(message?.to ?? []), ...(message?.bcc ?? [])].map((m) => m.address)).toEqual([
      'inside@example.org',
    ]);
  });

  it('answers a second STARTTLS with 503 inside TLS, and survives one pipelined in clear text', async () => {
    const run = await python(
      rig,
      `
r = Raw()
say(r.cmd('STARTTLS')[1][-1])
say(r.cmd('NOOP')[0])
p = Raw(tls=False)
p.cmd('EHLO client.test')
p.send('STARTTLS\\r\\nSTARTTLS\\r\\n')
say(p.reply()[0])
`,
    );
    expect(said(run.transcript)).toEqual(['503 5.5.1 Error: TLS already active', '250', '220']);
  });

  it('answers malformed AUTH with 501 or 504 and never authenticates', async () => {
    const run = await python(
      rig,
      `
blobs = ['AUTH PLAIN !!!notbase64!!!', 'AUTH PLAIN =', 'AUTH XOAUTH2 abc', 'AUTH', 'AUTH PLAIN AAAA',
         'AUTH PLAIN ' + base64.b64encode(b'a\\x00b').decode(),
         'AUTH PLAIN ' + base64.b64encode(b'\\x00u\\x00' + bytes(range(256))).decode()]
for blob in blobs:
    r = Raw()
    c = r.cmd(blob)
    if c[0] == 334:
        c = r.cmd('***garbage***')
    say(c[0], r.cmd('MAIL FROM:<app@example.com>')[0])
    r.close()
`,
    );
    for (const line of said(run.transcript)) {
      const [auth, mail] = line.split(' ');
      expect(['501', '504', '535']).toContain(auth);
      expect(mail).toBe('530');
    }
  });

  it('answers 452 to each RCPT past the 50th of 10,000 pipelined, and queues one message to 50', async () => {
    const run = await python(
      rig,
      `
r = Raw()
r.auth()
r.cmd('MAIL FROM:<app@example.com>')
r.send(''.join('RCPT TO:<r%d@example.org>\\r\\n' % i for i in range(10000)))
codes = {}
for i in range(10000):
    c = r.reply()[0]
    codes[c] = codes.get(c, 0) + 1
say(codes.get(250), codes.get(452))
r.cmd('DATA')
r.send('Subject: many\\r\\n\\r\\nx\\r\\n.\\r\\n')
say(r.reply()[1][-1])
`,
      {},
      60_000,
    );
    const [counts, reply] = said(run.transcript);
    expect(counts).toBe('50 9950');
    const id = /queued as (msg_\d+)/.exec(reply ?? '')?.[1];
    expect(rig.messages.peek(id ?? '')?.recipients).toHaveLength(50);
  });

  it('answers the same recipient given 10,000 times once, not 10,000 times', async () => {
    const run = await python(
      rig,
      `
r = Raw()
r.auth()
r.cmd('MAIL FROM:<app@example.com>')
r.send(''.join('RCPT TO:<%s@example.org>\\r\\n' % ('same' if i % 2 else 'SAME') for i in range(10000)))
for i in range(10000):
    r.reply()
r.cmd('DATA')
r.send('Subject: same\\r\\n\\r\\nx\\r\\n.\\r\\n')
say(r.reply()[1][-1])
`,
      {},
      60_000,
    );
    const id = /queued as (msg_\d+)/.exec(run.transcript)?.[1];
    expect(rig.messages.peek(id ?? '')?.recipients.map((r) => r.address.toLowerCase())).toEqual([
      'same@example.org',
    ]);
  });

  it('hangs up on pipelined binary garbage after ten unknown commands, queueing nothing', async () => {
    const before = rig.queue.jobs.length;
    const run = await python(
      rig,
      `
import random
random.seed(7)
r = Raw()
r.auth()
junk = bytes(random.getrandbits(8) for _ in range(200000))
r.send(b'MAIL FROM:<app@example.com>\\r\\nRCPT TO:<g@example.org>\\r\\n' + junk + b'\\r\\nDATA\\r\\n')
last = None
while True:
    c = r.reply()
    if c[0] is None: break
    last = c[1][-1]
say(last)
`,
    );
    expect(run.transcript.trim()).toMatch(/^421 .*too many unrecognized commands$/);
    expect(rig.queue.jobs).toHaveLength(before);
  });

  it('survives TLS handshakes cut short and clear text sent to the implicit-TLS port', async () => {
    const run = await python(
      rig,
      `
for i in range(5):
    s = socket.create_connection(('127.0.0.1', PORT), timeout=20)
    f = s.makefile('rb')
    f.readline()
    s.sendall(b'EHLO x\\r\\n')
    while f.readline()[3:4] == b'-':
        pass
    s.sendall(b'STARTTLS\\r\\n')
    f.readline()
    s.sendall(b'\\x16\\x03\\x01\\x00\\x05hello')
    f.close(); s.close()
for i in range(5):
    s = socket.create_connection(('127.0.0.1', TLS_PORT), timeout=20)
    s.sendall(b'EHLO not tls\\r\\n' * 10)
    s.close()
say('done')
`,
    );
    expect(run.transcript.trim()).toBe('done');
  });

  it('hangs up on an HTTP request', async () => {
    const run = await python(rig, `say(Raw(tls=False).cmd('GET / HTTP/1.1')[1][-1])`);
    expect(run.transcript.trim()).toBe('421 4.4.2 HTTP requests not allowed');
  });

  it('refuses a message the MIME parser gives up on (1,100 parts) with 554 and words, not a 451 to retry forever', async () => {
    const before = rig.records().length;
    const run = await python(
      rig,
      `
r = Raw()
r.auth()
r.cmd('MAIL FROM:<app@example.com>'); r.cmd('RCPT TO:<parts@example.org>'); r.cmd('DATA')
parts = b''.join(b'--b\\r\\nContent-Type: text/plain\\r\\n\\r\\nx\\r\\n' for i in range(1100))
r.send(b'From: app@example.com\\r\\nSubject: parts\\r\\nContent-Type: multipart/mixed; boundary=b\\r\\n\\r\\n' + parts + b'--b--\\r\\n.\\r\\n')
say(r.reply()[1][-1])
`,
    );
    expect(run.transcript.trim()).toMatch(/^554 5\.6\.0 Message refused: .*could not be read/);
    expect(rig.records()).toHaveLength(before);
  });

  it('still takes a normal message after all of the above', async () => {
    const run = await python(
      rig,
      `
s = connect()
s.mail('app@example.com'); s.rcpt('still@example.org')
code, text = s.data(b'Subject: still here\\r\\n\\r\\nHi.\\r\\n')
say(code, text.decode())
`,
    );
    expect(run.transcript.trim()).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
  });
});

describe('resource limits under abuse', () => {
  it('holds no more than the size limit of an oversized message in memory while it reads it', async () => {
    const local = await startSmtpRig({ local: true, tls: false, maxBytes: 1024 * 1024 });
    // What is retained, not what was allocated on the way: garbage is collected before measuring.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const marker = join(tmpdir(), `baton-smtp-huge-${process.pid}-${Date.now()}`);
    gc();
    const base = process.memoryUsage().arrayBuffers;
    try {
      const client = python(
        local,
        `
r = Raw(tls=False)
r.cmd('EHLO client.test'); r.auth()
r.cmd('MAIL FROM:<app@example.com>'); r.cmd('RCPT TO:<huge@example.org>'); r.cmd('DATA')
chunk = ('x' * 998 + '\\r\\n').encode() * 1000
for i in range(40):
    r.send(chunk)
open(os.environ['SENT'], 'w').close()
wait_for(os.environ['SENT'] + '-measured')
r.send(b'.\\r\\n')
say(r.reply()[1][-1])
`,
        { SENT: marker },
      );
      await vi.waitFor(() => expect(existsSync(marker)).toBe(true), { timeout: 30_000, interval: 20 });
      // Let the server read what is still in the socket buffers.
      await new Promise((resolve) => setTimeout(resolve, 300));
      gc();
      const held = process.memoryUsage().arrayBuffers - base;
      writeFileSync(`${marker}-measured`, '');
      const run = await client;
      expect(run.transcript.trim()).toBe("552 5.3.4 The message is larger than 1 MB, Baton's limit for SMTP");
      // 40 MB went over the socket; keeping it would hold that much.
      expect(held).toBeLessThan(16 * 1024 * 1024);
    } finally {
      await local.close();
    }
    expect(local.records()).toEqual([]);
  });

  it('holds at most the per-source limit of unfinished TLS handshakes on the implicit-TLS port', async () => {
    const limited = await startSmtpRig({ maxConnectionsPerSource: 3 });
    try {
      const run = await python(
        limited,
        `
socks = [socket.create_connection(('127.0.0.1', TLS_PORT), timeout=20) for _ in range(10)]
time.sleep(0.5)
closed = 0
for s in socks:
    s.settimeout(0.05)
    try:
        if s.recv(1) == b'':
            closed += 1
    except socket.timeout:
        pass
say(closed)
for s in socks:
    s.close()
time.sleep(0.3)
t = smtplib.SMTP_SSL('127.0.0.1', TLS_PORT, local_hostname='client.test', context=context(), timeout=20)
say(t.noop()[0])
`,
      );
      // Each unfinished handshake would otherwise be held for the whole idle timeout (300 s).
      expect(said(run.transcript)).toEqual(['7', '250']);
    } finally {
      await limited.close();
    }
  });

  describe('while the key directory is slow to read (a cold cache)', () => {
    /** A server whose key directory takes 300 ms, as a DynamoDB scan after the cache expired. */
    async function slowDirectoryRig(): Promise<SmtpRig> {
      const slow = await startSmtpRig({ maxConnectionsPerSource: 2 });
      const list = slow.keys.list.bind(slow.keys);
      vi.spyOn(slow.keys, 'list').mockImplementation(async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return list();
      });
      return slow;
    }

    it('counts connections that arrive together against the per-source limit', async () => {
      const slow = await slowDirectoryRig();
      try {
        const run = await python(
          slow,
          `
import threading
codes = []
socks = []
def one():
    r = Raw(tls=False)
    codes.append(r.greeting[0])
    socks.append(r)
threads = [threading.Thread(target=one) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
say(sorted(codes))
`,
        );
        expect(run.transcript.trim()).toBe('[220, 220, 421, 421]');
      } finally {
        await slow.close();
      }
    });

    it('frees the place of a connection that hangs up before its checks are done', async () => {
      const slow = await slowDirectoryRig();
      try {
        const run = await python(
          slow,
          `
socks = [socket.create_connection(('127.0.0.1', PORT), timeout=20) for _ in range(4)]
time.sleep(0.15)
for s in socks:
    s.close()
time.sleep(0.6)
a = Raw(tls=False)
b = Raw(tls=False)
say(a.greeting[0], b.greeting[0])
`,
        );
        expect(run.transcript.trim()).toBe('220 220');
      } finally {
        await slow.close();
      }
    });
  });
});
