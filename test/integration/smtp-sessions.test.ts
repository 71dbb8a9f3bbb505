/**
 * SMTP sessions as Python's smtplib (the standard library, its own process) runs them: STARTTLS
 * with the certificate verified, AUTH, several messages per connection, RSET, pipelining, Bcc,
 * UTF-8, implicit TLS, hanging up mid-DATA, idle timeouts, shutdown, AUTH throttling and the
 * connection limit per source address. Nothing is mocked at the protocol.
 */
import '../support/quiet-powertools.ts';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { composeMime } from '../../lambdas/domain/delivery/mime.ts';
import type { SendJob } from '../../lambdas/domain/message.ts';
import { headerBlock, headerValues } from '../support/mime.ts';
import {
  destinations,
  python,
  queuedId,
  type SmtpRig,
  said,
  startSmtpRig,
  withLogs,
} from '../support/smtp.ts';

let rig: SmtpRig;
beforeAll(async () => {
  rig = await startSmtpRig();
});
afterAll(async () => {
  await rig?.close();
});

describe('smtplib over STARTTLS', () => {
  it('verifies the certificate, authenticates with AUTH PLAIN and AUTH LOGIN, and gets each message queued', async () => {
    const run = await python(
      rig,
      `
for method in ('PLAIN', 'LOGIN'):
    s = connect(auth=False)
    s.ehlo()
    s.user, s.password = 'app', TOKEN
    code, text = s.auth(method, getattr(s, 'auth_' + method.lower()), initial_response_ok=(method == 'PLAIN'))
    say(code, text.decode())
    s.mail('app@example.com'); s.rcpt('login-' + method.lower() + '@example.org')
    code, text = s.data(b'Subject: hello\\r\\n\\r\\nHello.\\r\\n')
    say(code, text.decode())
    s.quit()
`,
    );
    const lines = said(run.transcript);
    expect(lines[0]).toBe('235 2.7.0 Authentication successful');
    expect(lines[2]).toBe('235 2.7.0 Authentication successful');
    for (const reply of [lines[1], lines[3]]) {
      expect(reply).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
      expect(rig.jobFor(queuedId(reply))).toBeDefined();
    }
  });

  it('takes five messages on one connection, each recorded and queued under its own id', async () => {
    const run = await python(
      rig,
      `
s = connect()
for i in range(5):
    s.mail('app@example.com'); s.rcpt('five-%d@example.org' % i)
    code, text = s.data(('Subject: number %d\\r\\n\\r\\nBody %d.\\r\\n' % (i, i)).encode())
    say(code, text.decode())
s.quit()
`,
    );
    const ids = said(run.transcript).map(queuedId);
    expect(new Set(ids).size).toBe(5);
    ids.forEach((id, i) => {
      expect(rig.jobFor(id)?.message.subject).toBe(`number ${i}`);
      expect(destinations(rig.jobFor(id))).toEqual([`five-${i}@example.org`]);
      expect(rig.messages.peek(id)?.phase).toBe('queued');
    });
  });

  it('keeps 16 concurrent sessions apart: 5 messages each, every one queued once to its own recipient', async () => {
    const jobs = rig.queue.jobs.length;
    const run = await python(
      rig,
      `
import threading
replies = []
def session(n):
    s = connect()
    for i in range(5):
        s.mail('app@example.com'); s.rcpt('c%d-%d@example.org' % (n, i))
        code, text = s.data(('Subject: c%d-%d\\r\\n\\r\\nHi.\\r\\n' % (n, i)).encode())
        replies.append('%d c%d-%d %s' % (code, n, i, text.decode()))
    s.quit()
threads = [threading.Thread(target=session, args=(n,)) for n in range(16)]
for t in threads: t.start()
for t in threads: t.join()
for r in replies: say(r)
`,
    );
    const lines = said(run.transcript);
    expect(lines).toHaveLength(80);
    expect(new Set(lines.map(queuedId)).size).toBe(80);
    for (const line of lines) {
      const [code, name] = line.split(' ');
      expect(code).toBe('250');
      const job = rig.jobFor(queuedId(line));
      expect(job?.message.subject).toBe(name);
      expect(destinations(job)).toEqual([`${name}@example.org`]);
    }
    expect(rig.queue.jobs.length).toBe(jobs + 80);
  });

  it('forgets the envelope on RSET: only the next transaction recipients get the message', async () => {
    const run = await python(
      rig,
      `
s = connect()
s.mail('app@example.com'); s.rcpt('dropped@example.org')
say(*s.rset())
s.mail('app@example.com'); s.rcpt('after-rset@example.org')
code, text = s.data(b'Subject: after rset\\r\\n\\r\\nHi.\\r\\n')
say(code, text.decode())
s.quit()
`,
    );
    const [rset, data] = said(run.transcript);
    expect(rset).toMatch(/^250 /);
    expect(destinations(rig.jobFor(queuedId(data)))).toEqual(['after-rset@example.org']);
  });

  it('answers pipelined MAIL, RCPT, RCPT and DATA in order, then queues the message', async () => {
    const run = await python(
      rig,
      `
r = Raw()
say('PIPELINING' in ' '.join(r.ehlo[1]))
say(r.auth()[0])
r.send('MAIL FROM:<app@example.com>\\r\\nRCPT TO:<pipe-1@example.org>\\r\\nRCPT TO:<pipe-2@example.org>\\r\\nDATA\\r\\n')
for _ in range(4):
    say(r.reply()[1][-1])
r.send('Subject: pipelined\\r\\n\\r\\nHi.\\r\\n.\\r\\n')
say(r.reply()[1][-1])
say(r.cmd('QUIT')[0])
`,
    );
    const lines = said(run.transcript);
    expect(lines.slice(0, 2)).toEqual(['True', '235']);
    expect(lines[2]).toMatch(/^250 2\.1\.0/);
    expect(lines[3]).toMatch(/^250 2\.1\.5/);
    expect(lines[4]).toMatch(/^250 2\.1\.5/);
    expect(lines[5]).toMatch(/^354 /);
    expect(destinations(rig.jobFor(queuedId(lines[6])))).toEqual([
      'pipe-1@example.org',
      'pipe-2@example.org',
    ]);
  });

  it('records and queues nothing when the client hangs up in the middle of DATA, and keeps serving', async () => {
    const before = { records: rig.records().length, jobs: rig.queue.jobs.length };
    const run = await python(
      rig,
      `
r = Raw()
r.auth()
r.cmd('MAIL FROM:<app@example.com>')
r.cmd('RCPT TO:<cut-off@example.org>')
say(r.cmd('DATA')[0])
r.send('Subject: cut off\\r\\n\\r\\n' + 'half a message\\r\\n' * 1000)
r.close()
time.sleep(0.5)
s = connect()
s.mail('app@example.com'); s.rcpt('after-cut@example.org')
code, text = s.data(b'Subject: next\\r\\n\\r\\nHi.\\r\\n')
say(code, text.decode())
`,
    );
    const [data, next] = said(run.transcript);
    expect(data).toBe('354');
    expect(rig.records().length).toBe(before.records + 1);
    expect(rig.queue.jobs.length).toBe(before.jobs + 1);
    expect(destinations(rig.jobFor(queuedId(next)))).toEqual(['after-cut@example.org']);
  });

  it('sends to a Bcc recipient of the envelope only, never in a header', async () => {
    const run = await python(
      rig,
      `
s = connect()
msg = b'From: app@example.com\\r\\nTo: seen@example.org\\r\\nBcc: hidden@example.org\\r\\nSubject: bcc\\r\\n\\r\\nHi.\\r\\n'
s.mail('app@example.com'); s.rcpt('seen@example.org'); s.rcpt('hidden@example.org')
code, text = s.data(msg)
say(code, text.decode())
s.quit()
`,
    );
    const job = rig.jobFor(queuedId(said(run.transcript)[0]));
    expect(destinations(job)).toEqual(['hidden@example.org', 'seen@example.org']);
    const mime = await composeMime(job?.message as SendJob['message'], { id: 'msg_x', date: new Date() });
    expect(headerValues(mime, 'Bcc')).toEqual([]);
    expect(headerBlock(mime)).not.toContain('hidden@example.org');
  });

  it('keeps a UTF-8 subject, whether RFC 2047 encoded or sent as 8-bit with SMTPUTF8', async () => {
    const subject = 'Grüße, Zoë: 日本の請求書 ✓';
    const run = await python(
      rig,
      `
from email.message import EmailMessage
s = connect()
m = EmailMessage()
m['From'] = 'Zoë Ünal <app@example.com>'
m['To'] = 'Łukasz <utf8-encoded@example.org>'
m['Subject'] = os.environ['SUBJECT']
m.set_content('Grüße')
s.send_message(m)
say(s.noop()[0])
raw = ('From: app@example.com\\r\\nTo: utf8-raw@example.org\\r\\nSubject: ' + os.environ['SUBJECT'] + '\\r\\n\\r\\nGrüße\\r\\n').encode('utf-8')
s.mail('app@example.com', ['SMTPUTF8', 'BODY=8BITMIME']); s.rcpt('utf8-raw@example.org')
code, text = s.data(raw)
say(code, text.decode())
s.quit()
`,
      { SUBJECT: subject, PYTHONIOENCODING: 'utf-8' },
    );
    const lines = said(run.transcript);
    expect(lines[0]).toBe('250');
    const encoded = rig.queue.jobs.find((j) => destinations(j.job).includes('utf8-encoded@example.org'));
    expect(encoded?.job.message.subject).toBe(subject);
    expect(rig.jobFor(queuedId(lines[1]))?.message.subject).toBe(subject);
  });

  it('refuses a non-ASCII local part, which SES cannot send, with 553 5.6.7 and words, and keeps the session', async () => {
    const run = await python(
      rig,
      `
s = connect()
say(*s.mail('app@example.com', ['SMTPUTF8']))
say(*s.rcpt('zoë@example.org'))
say(*s.rcpt('ascii-after-utf8@example.org'))
`,
      { PYTHONIOENCODING: 'utf-8' },
    );
    const [mail, utf8, ascii] = said(run.transcript);
    expect(mail).toMatch(/^250 /);
    expect(utf8).toBe(
      "553 b'5.6.7 SES cannot send to or from an address with non-ASCII characters before the @; use an ASCII address'",
    );
    expect(ascii).toMatch(/^250 /);
  });

  it('keeps UTF-8 display names of From and To', async () => {
    const run = await python(
      rig,
      `
from email.message import EmailMessage
s = connect()
m = EmailMessage()
m['From'] = 'Zoë Ünal <app@example.com>'
m['To'] = 'Łukasz Żółw <names@example.org>'
m['Subject'] = 'names'
m.set_content('Hi')
s.send_message(m)
say(s.noop()[0])
`,
      { PYTHONIOENCODING: 'utf-8' },
    );
    expect(run.transcript.trim()).toBe('250');
    const job = rig.queue.jobs.find((j) => destinations(j.job).includes('names@example.org'))?.job;
    expect(job?.message.from).toEqual({ name: 'Zoë Ünal', address: 'app@example.com' });
    // The To header as the client wrote it (names included); the destination is the envelope's.
    expect(job?.message.shownTo).toEqual([{ name: 'Łukasz Żółw', address: 'names@example.org' }]);
    expect(job?.message.to).toEqual([{ address: 'names@example.org' }]);
  });

  it('reads a body and subject in ISO-8859-1 into the same Unicode text', async () => {
    const run = await python(
      rig,
      `
s = connect()
raw = ('From: app@example.com\\r\\nSubject: =?iso-8859-1?Q?Gr=FC=DFe?=\\r\\nMIME-Version: 1.0\\r\\n'
       'Content-Type: text/plain; charset=iso-8859-1\\r\\nContent-Transfer-Encoding: 8bit\\r\\n\\r\\n').encode('ascii') + 'Grüße aus Köln\\r\\n'.encode('latin-1')
s.mail('app@example.com', ['BODY=8BITMIME']); s.rcpt('latin1@example.org')
code, text = s.data(raw)
say(code, text.decode())
`,
    );
    const message = rig.jobFor(queuedId(run.transcript))?.message;
    expect(message?.subject).toBe('Grüße');
    expect(message?.text?.trim()).toBe('Grüße aus Köln');
  });

  it('answers 552 at MAIL FROM when the declared SIZE is over the limit, before any data is sent', async () => {
    const run = await python(
      rig,
      `
s = connect()
say(*s.mail('app@example.com', ['SIZE=%d' % (2 * 1024 * 1024)]))
`,
    );
    expect(run.transcript.trim()).toMatch(/^552 b'5\.3\.4 /);
  });
});

describe('smtplib over implicit TLS (port 465)', () => {
  it('speaks TLS from the first byte, authenticates and gets the message queued', async () => {
    const run = await python(
      rig,
      `
s = smtplib.SMTP_SSL('127.0.0.1', TLS_PORT, local_hostname='client.test', context=context(), timeout=20)
say('STARTTLS' in s.ehlo()[1].decode())
s.login('app', TOKEN)
s.mail('app@example.com'); s.rcpt('implicit@example.org')
code, text = s.data(b'Subject: 465\\r\\n\\r\\nHi.\\r\\n')
say(code, text.decode())
s.quit()
`,
    );
    const [startTls, reply] = said(run.transcript);
    expect(startTls).toBe('False');
    expect(destinations(rig.jobFor(queuedId(reply)))).toEqual(['implicit@example.org']);
  });
});

describe('local mode', () => {
  it('offers and takes AUTH without STARTTLS (loopback only)', async () => {
    const local = await startSmtpRig({ local: true, tls: false });
    try {
      const run = await python(
        local,
        `
s = connect(tls=False)
say(s.has_extn('auth'), s.has_extn('starttls'))
s.mail('app@example.com'); s.rcpt('local@example.org')
code, text = s.data(b'Subject: local\\r\\n\\r\\nHi.\\r\\n')
say(code, text.decode())
`,
      );
      const [features, reply] = said(run.transcript);
      expect(features).toBe('True False');
      expect(reply).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    } finally {
      await local.close();
    }
  });
});

describe('session limits', () => {
  it('closes an idle session with 421', async () => {
    const idle = await startSmtpRig({ socketTimeoutMs: 300 });
    try {
      const run = await python(
        idle,
        `
r = Raw(tls=False)
r.cmd('EHLO client.test')
time.sleep(1)
say(r.reply()[1][-1])
say(r.reply()[0])
`,
      );
      const [reply, after] = said(run.transcript);
      expect(reply).toMatch(/^421 4\.4\.2 /);
      expect(after).toBe('None');
    } finally {
      await idle.close();
    }
  });

  it('refuses a source address its connections over the limit with 421', async () => {
    const limited = await startSmtpRig({ maxConnectionsPerSource: 2 });
    try {
      const run = await python(
        limited,
        `
a = Raw(tls=False); b = Raw(tls=False); c = Raw(tls=False)
say(a.greeting[0], b.greeting[0], c.greeting[1][-1])
a.close()
time.sleep(0.3)
d = Raw(tls=False)
say(d.greeting[0])
`,
      );
      const [first, later] = said(run.transcript);
      expect(first).toBe(
        '220 220 421 4.7.0 Too many connections from your address (at most 2 at once); retry later',
      );
      // A connection that ended frees its place.
      expect(later).toBe('220');
    } finally {
      await limited.close();
    }
  });

  it('throttles failed AUTH per source address, even for the right key, and never logs the password', async () => {
    const guarded = await startSmtpRig({ maxAuthFailures: 3 });
    const wrong = 'bt_wrongwrong00_secretpasswordthatmustnotleak0123456789abc';
    try {
      const { result: run, log } = await withLogs(() =>
        python(
          guarded,
          `
r = Raw()
for _ in range(3):
    say(r.auth(os.environ['WRONG'])[1][-1])
say(r.auth()[1][-1])
say(r.reply()[0])
n = Raw(tls=False)
say(n.greeting[1][-1])
`,
          { WRONG: wrong },
        ),
      );
      const lines = said(run.transcript);
      expect(lines.slice(0, 3)).toEqual(
        Array(3).fill('535 5.7.8 Authentication failed: The API key is not valid.'),
      );
      expect(lines[3]).toMatch(/^421 4\.7\.0 Too many failed logins from your address; try again in \d+ s$/);
      expect(lines[4]).toBe('None');
      expect(lines[5]).toMatch(/^421 4\.7\.0 Too many failed logins/);
      expect(log.match(/smtp authentication failed/g)).toHaveLength(3);
      expect(log).not.toContain(wrong);
      expect(log).not.toContain(guarded.token);
      expect(log).not.toContain(Buffer.from(`\0app\0${wrong}`).toString('base64'));
    } finally {
      await guarded.close();
    }
  });

  it('logs a client that hangs up mid-DATA as what it is, not as a server error', async () => {
    const { log } = await withLogs(async (logSoFar) => {
      await python(
        rig,
        `
r = Raw()
r.auth()
r.cmd('MAIL FROM:<app@example.com>'); r.cmd('RCPT TO:<left@example.org>'); r.cmd('DATA')
r.send('Subject: left\\r\\n\\r\\nhalf a message\\r\\n')
r.close()
`,
      );
      // The server sees the hang-up after the client is gone.
      await vi.waitFor(() => expect(logSoFar()).toMatch(/during DATA|smtp step failed/), {
        timeout: 5_000,
        interval: 20,
      });
    });
    expect(log).toMatch(/"message":"smtp client left during DATA"/);
    expect(log).not.toMatch(/"level":"ERROR"/);
  });
});

describe('shutdown', () => {
  it('finishes the DATA in flight, then answers 421 4.3.2 to the next command: nothing lost', async () => {
    const draining = await startSmtpRig({ drainMs: 5_000 });
    const dir = join(tmpdir(), `baton-smtp-drain-${process.pid}-${Date.now()}`);
    const go = `${dir}-go`;
    const inData = `${dir}-in-data`;
    try {
      const client = python(
        draining,
        `
r = Raw()
r.auth()
r.cmd('MAIL FROM:<app@example.com>')
r.cmd('RCPT TO:<in-flight@example.org>')
say(r.cmd('DATA')[0])
r.send('Subject: in flight\\r\\n\\r\\nfirst half\\r\\n')
open(os.environ['IN_DATA'], 'w').close()
wait_for(os.environ['GO'])
r.send('second half\\r\\n.\\r\\n')
say(r.reply()[1][-1])
say(r.cmd('MAIL FROM:<app@example.com>')[1][-1])
say(r.reply()[0])
`,
        { GO: go, IN_DATA: inData },
      );
      await vi.waitFor(() => expect(existsSync(inData)).toBe(true), { timeout: 20_000, interval: 20 });
      const drained = draining.smtp.drain();
      writeFileSync(go, '');
      const run = await client;
      await drained;
      const [data, end, next, closed] = said(run.transcript);
      expect(data).toBe('354');
      expect(end).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
      const id = queuedId(end);
      expect(draining.messages.peek(id)?.phase).toBe('queued');
      expect(draining.queue.jobs.map((j) => j.job.id)).toEqual([id]);
      expect(next).toBe('421 4.3.2 Baton is restarting; retry on a new connection');
      expect(closed).toBe('None');
    } finally {
      await draining.close();
    }
  });
  it('ends a session still idle when the drain time is up with 421 4.3.2, and refuses new connections', async () => {
    const draining = await startSmtpRig({ drainMs: 500 });
    const marker = join(tmpdir(), `baton-smtp-idle-drain-${process.pid}-${Date.now()}`);
    try {
      const client = python(
        draining,
        `
r = Raw()
r.auth()
open(os.environ['READY'], 'w').close()
say(r.reply()[1][-1])
say(r.reply()[0])
try:
    Raw(tls=False)
    say('connected')
except ConnectionRefusedError:
    say('refused')
`,
        { READY: marker },
      );
      await vi.waitFor(() => expect(existsSync(marker)).toBe(true), { timeout: 20_000, interval: 20 });
      const started = Date.now();
      await draining.smtp.drain();
      const waited = Date.now() - started;
      const [ended, closed, again] = said((await client).transcript);
      expect(ended).toBe('421 4.3.2 Baton is restarting; retry on a new connection');
      expect(closed).toBe('None');
      expect(again).toBe('refused');
      expect(waited).toBeGreaterThanOrEqual(400);
    } finally {
      await draining.close();
    }
  });
});
