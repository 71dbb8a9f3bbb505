/**
 * Every reply of the SMTP front door a legacy client acts on, as swaks (an independent SMTP
 * client, its own process) sees it over a real socket, and what the in-memory stores hold after.
 * One server for the file; each test uses its own key or addresses so they do not interfere.
 */
import '../support/quiet-powertools.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TransientError } from '../../lambdas/shared/errors.ts';
import { suppression } from '../support/builders.ts';
import { decisionOf, guardMarkOf } from '../support/guard.ts';
import {
  destinations,
  lastReply,
  python,
  queuedId,
  replies,
  type SmtpRig,
  startSmtpRig,
  swaks,
  swaksMessage,
} from '../support/smtp.ts';

let rig: SmtpRig;
let files: string;
beforeAll(async () => {
  rig = await startSmtpRig();
  files = mkdtempSync(join(tmpdir(), 'baton-smtp-replies-'));
});
afterAll(async () => {
  await rig?.close();
});

describe('SMTP replies to swaks', () => {
  it('answers 250 "queued as <id>" for a message that is recorded and queued under that id', async () => {
    const run = await swaks(rig, swaksMessage(rig.token, { to: 'queued@example.org' }));
    const reply = lastReply(run.transcript);
    expect(reply).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    const id = reply.split(' ').at(-1) as string;
    expect(rig.messages.peek(id)?.recipients.map((r) => r.address)).toEqual(['queued@example.org']);
    expect(rig.jobFor(id)?.tenant).toBe('tenant-a');
    expect(run.status).toBe(0);
  });

  it('answers 250 only once the job is enqueued: while the queue write is held the client still waits', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reached = () => {};
    const enqueueReached = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const enqueue = rig.queue.enqueue.bind(rig.queue);
    const spy = vi.spyOn(rig.queue, 'enqueue').mockImplementationOnce(async (lane, job) => {
      reached();
      await held;
      return enqueue(lane, job);
    });
    try {
      const client = swaks(rig, swaksMessage(rig.token, { to: 'held@example.org' }));
      await enqueueReached;
      // The record is written before the job, and the client has no answer yet.
      const recorded = rig.records().find((r) => r.recipients.some((x) => x.address === 'held@example.org'));
      expect(recorded?.phase).toBe('queued');
      const early = await Promise.race([client, new Promise((r) => setTimeout(() => r('waiting'), 500))]);
      expect(early).toBe('waiting');
      release();
      const run = await client;
      expect(lastReply(run.transcript)).toBe(`250 2.6.0 Ok: queued as ${recorded?.id}`);
      expect(rig.jobFor(recorded?.id as string)).toBeDefined();
    } finally {
      release();
      spy.mockRestore();
    }
  });

  it('advertises PIPELINING, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES and SIZE in EHLO', async () => {
    const run = await swaks(rig, ['--tls', '--quit-after', 'EHLO']);
    const ehlo = replies(run.transcript).filter((r) => r.startsWith('250'));
    const after = ehlo.slice(ehlo.findIndex((r, i) => i > 0 && /^250[- ]baton\.test/.test(r)));
    for (const feature of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'SIZE 1048576']) {
      expect(after).toContain(`250-${feature}`.replace('250-SIZE 1048576', '250 SIZE 1048576'));
    }
  });

  it('offers AUTH only after STARTTLS when not in local mode', async () => {
    const run = await swaks(rig, ['--tls', '--quit-after', 'EHLO']);
    const lines = replies(run.transcript);
    const secondEhlo = lines.findIndex((r, i) => i > 1 && /^250-baton\.test/.test(r));
    expect(secondEhlo).toBeGreaterThan(0);
    expect(lines.slice(0, secondEhlo).filter((r) => /AUTH/.test(r))).toEqual([]);
    expect(lines.slice(secondEhlo)).toContain('250-AUTH PLAIN LOGIN');
  });

  it('answers 538 to AUTH before STARTTLS when not in local mode, and the key is not accepted', async () => {
    const run = await python(
      rig,
      `
r = Raw(tls=False)
r.cmd('EHLO client.test')
say(r.auth()[1][-1])
say(r.cmd('MAIL FROM:<app@example.com>')[1][-1])
`,
    );
    const [auth, mail] = run.transcript.trim().split('\n');
    expect(auth).toMatch(/^538 5\.7\.0 /);
    expect(mail).toMatch(/^530 5\.7\.0 Authentication required: STARTTLS, then AUTH/);
  });

  it('answers 530 with words at MAIL FROM when the client did not authenticate', async () => {
    const run = await swaks(rig, ['--tls', '--from', 'app@example.com', '--to', 'ana@example.org']);
    expect(lastReply(run.transcript)).toBe(
      '530 5.7.0 Authentication required: AUTH with your Baton API key as the password',
    );
  });

  it('answers 535 to a password that is no key', async () => {
    const run = await swaks(rig, swaksMessage('bt_nosuchkey000_notarealsecretatall0123456789abcdefghij'));
    expect(lastReply(run.transcript)).toBe('535 5.7.8 Authentication failed: The API key is not valid.');
  });

  it('answers 535 to a suspended key', async () => {
    const { token } = rig.addKey({ status: 'suspended' });
    const run = await swaks(rig, swaksMessage(token));
    expect(lastReply(run.transcript)).toBe('535 5.7.8 Authentication refused: This API key is suspended.');
  });

  it('answers 535 in the abuse guard’s words to a key the guard suspended', async () => {
    const suspension = decisionOf('suspendKey', rig.clock());
    const { token, key } = rig.addKey({ status: 'suspended', guard: guardMarkOf(suspension) });
    const run = await swaks(rig, swaksMessage(token));
    expect(lastReply(run.transcript)).toBe(
      `535 5.7.8 Authentication refused: This API key was suspended by the abuse guard (suppressedHitRate): ${suspension.reason}. ` +
        `An operator can resume it: npm run guard -- resume --key ${key.keyId} --reason "<why>".`,
    );
  });

  it('answers MAIL FROM 451 4.7.1 to a key the abuse guard throttles, with when to retry', async () => {
    const { token } = rig.addKey({ guard: guardMarkOf(decisionOf('throttleKey', rig.clock())) });
    const run = await swaks(rig, swaksMessage(token, { to: 'throttled@example.org' }));
    expect(lastReply(run.transcript)).toMatch(
      /^451 4\.7\.1 The abuse guard throttled this API key \(volumeSpike\): .* Retry in 3600 s\.$/,
    );
    expect(rig.records().some((r) => r.recipients.some((x) => x.address === 'throttled@example.org'))).toBe(
      false,
    );
  });

  it('answers 250 "held" to a message the abuse guard holds, recorded held and never queued', async () => {
    const { token, key } = rig.addKey({ guard: guardMarkOf(decisionOf('holdAll', rig.clock())) });
    const run = await swaks(rig, swaksMessage(token, { to: 'held-by-guard@example.org' }));
    const reply = lastReply(run.transcript);
    expect(reply).toMatch(/^250 2\.6\.0 Ok: recorded as msg_\d+ and held by the abuse guard;/);
    const id = /recorded as (msg_\d+)/.exec(reply)?.[1] as string;
    expect(rig.messages.peek(id)).toMatchObject({ phase: 'held', keyId: key.keyId });
    expect(rig.jobFor(id)).toBeUndefined();
    expect(rig.held.entries.size).toBeGreaterThan(0);
  });

  it('answers 535 to a key without the send scope', async () => {
    const { token } = rig.addKey({ scopes: ['read'] });
    const run = await swaks(rig, swaksMessage(token));
    expect(lastReply(run.transcript)).toMatch(/^535 5\.7\.8 Authentication refused: .*"send" scope/);
  });

  it('answers 535 to a key used from a source address outside its CIDRs', async () => {
    const { token } = rig.addKey({ allowedCidrs: ['10.0.0.0/8'] });
    const run = await swaks(rig, swaksMessage(token));
    expect(lastReply(run.transcript)).toBe(
      '535 5.7.8 Authentication refused: This API key may not be used from this source address.',
    );
  });

  it('answers 553 at MAIL FROM to an envelope sender outside the key domains (policy reject)', async () => {
    const before = rig.records().length;
    const run = await swaks(rig, swaksMessage(rig.token, { from: 'app@elsewhere.net' }));
    const reply = lastReply(run.transcript);
    expect(reply).toMatch(/^553 5\.7\.1 /);
    expect(reply).toMatch(/elsewhere\.net|domain/);
    expect(rig.records()).toHaveLength(before);
  });

  it('answers 550 at RCPT for a suppressed recipient with the reason, and accepts the others', async () => {
    await rig.suppressions.put(suppression('gone@example.org', 'hard_bounce'));
    const run = await swaks(
      rig,
      swaksMessage(rig.token, { to: 'kept@example.org,gone@example.org,also@example.org' }),
    );
    const lines = replies(run.transcript);
    expect(lines).toContain(
      '550 5.1.1 gone@example.org is on the suppression list (hard_bounce: the address bounced permanently); not sent to it, the other recipients are still accepted',
    );
    const reply = lastReply(run.transcript);
    expect(reply).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    expect(destinations(rig.jobFor(queuedId(reply)))).toEqual(['also@example.org', 'kept@example.org']);
  });

  it('records a recipient refused at RCPT as suppressed, with its reason, in the message record', async () => {
    await rig.suppressions.put(suppression('refused@example.org', 'complaint'));
    const run = await swaks(rig, swaksMessage(rig.token, { to: 'taken@example.org,refused@example.org' }));
    const id = lastReply(run.transcript).split(' ').at(-1) as string;
    const refused = rig.messages.peek(id)?.recipients.find((r) => r.address === 'refused@example.org');
    expect(refused?.status).toBe('suppressed');
    expect(refused?.reason).toMatch(/complaint/);
    // Never sent to it: not among the job's destinations.
    const job = rig.jobFor(id);
    expect([...(job?.message.to ?? []), ...(job?.message.bcc ?? [])].map((m) => m.address)).toEqual([
      'taken@example.org',
    ]);
  });

  it('answers 552 at the end of DATA to a message over the advertised SIZE, and records nothing', async () => {
    const before = rig.records().length;
    const body = join(files, 'big.txt');
    writeFileSync(body, `${'x'.repeat(76)}\r\n`.repeat(Math.ceil((1024 * 1024 + 10_000) / 78)));
    const run = await swaks(rig, swaksMessage(rig.token, { extra: ['--body', body] }));
    expect(lastReply(run.transcript)).toBe(
      "552 5.3.4 The message is larger than 1 MB, Baton's limit for SMTP",
    );
    expect(rig.records()).toHaveLength(before);
  });

  it('answers 554 with words to a message with an executable attachment, and records nothing', async () => {
    const before = rig.records().length;
    const exe = join(files, 'setup.exe');
    writeFileSync(exe, Buffer.concat([Buffer.from('MZ\x90\x00', 'latin1'), Buffer.alloc(512, 1)]));
    const run = await swaks(
      rig,
      swaksMessage(rig.token, {
        extra: [
          '--attach-type',
          'application/octet-stream',
          '--attach-name',
          'setup.exe',
          '--attach',
          `@${exe}`,
        ],
      }),
    );
    const reply = lastReply(run.transcript);
    expect(reply).toMatch(/^554 5\.7\.1 Message refused: attachments/);
    expect(rig.records()).toHaveLength(before);
  });

  it('answers 451 with a retry hint when the table is unavailable, and the message is neither recorded nor queued', async () => {
    const before = { records: rig.records().length, jobs: rig.queue.jobs.length };
    const spy = vi
      .spyOn(rig.messages, 'create')
      .mockRejectedValueOnce(new TransientError('the Messages table is throttling'));
    try {
      const run = await swaks(rig, swaksMessage(rig.token, { to: 'table-down@example.org' }));
      expect(lastReply(run.transcript)).toBe(
        '451 4.3.0 Baton could not record the message just now (a table or queue is unavailable); it was not accepted, retry in a minute',
      );
    } finally {
      spy.mockRestore();
    }
    expect({ records: rig.records().length, jobs: rig.queue.jobs.length }).toEqual(before);
  });

  it('answers 451 with a retry hint when the queue is unavailable, and the record says it was never queued', async () => {
    const jobs = rig.queue.jobs.length;
    const spy = vi
      .spyOn(rig.queue, 'enqueue')
      .mockRejectedValueOnce(new TransientError('SQS is unavailable'));
    try {
      const run = await swaks(rig, swaksMessage(rig.token, { to: 'queue-down@example.org' }));
      expect(lastReply(run.transcript)).toMatch(/^451 4\.3\.0 .*retry/);
    } finally {
      spy.mockRestore();
    }
    expect(rig.queue.jobs).toHaveLength(jobs);
    const record = rig
      .records()
      .find((r) => r.recipients.some((x) => x.address === 'queue-down@example.org'));
    // Not half-queued: the record stands as failed, so the status API never shows it as on its way.
    expect(record?.phase).toBe('failed');
  });
});

describe('SMTP rate, quota and resends', () => {
  it('answers 451 4.7.1 at MAIL FROM past the key per-second rate, with the retry in words', async () => {
    const { token } = rig.addKey({ rateLimit: 1 });
    const run = await swaks(rig, swaksMessage(token));
    expect(lastReply(run.transcript)).toMatch(/^250 /);
    // The rig's clock stands still: the second message falls in the same second.
    const again = await swaks(rig, swaksMessage(token));
    expect(lastReply(again.transcript)).toMatch(
      /^451 4\.7\.1 This API key may send 1 messages per second; retry in \d+ s$/,
    );
  });

  it('answers 452 4.7.1 at the end of DATA past the key daily quota, retry after midnight UTC', async () => {
    const { token } = rig.addKey({ dailyQuota: 1 });
    expect(lastReply((await swaks(rig, swaksMessage(token))).transcript)).toMatch(/^250 /);
    const before = rig.records().length;
    const over = await swaks(rig, swaksMessage(token, { to: 'over-quota@example.org' }));
    expect(lastReply(over.transcript)).toMatch(/^452 4\.7\.1 .*Retry after 00:00 UTC$/);
    expect(rig.records()).toHaveLength(before);
  });

  it('answers 553 to a null sender: Baton relays no bounces', async () => {
    const run = await swaks(rig, swaksMessage(rig.token, { from: '<>' }));
    expect(lastReply(run.transcript)).toBe(
      '553 5.1.7 A sender address is required: Baton does not relay bounces (MAIL FROM:<>)',
    );
  });

  it('records a message resent after a lost 250 once: the same Message-ID, envelope and bytes get the first id', async () => {
    const data = join(files, 'resend.eml');
    writeFileSync(
      data,
      'From: app@example.com\r\nTo: resent@example.org\r\nMessage-ID: <resend-1@app.example.com>\r\nSubject: resend\r\n\r\nOnce.\r\n',
    );
    const send = () =>
      swaks(rig, swaksMessage(rig.token, { to: 'resent@example.org', extra: ['--data', data] }));
    const first = lastReply((await send()).transcript);
    const second = lastReply((await send()).transcript);
    expect(first).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    expect(second).toBe(first);
    const id = first.split(' ').at(-1);
    expect(rig.queue.jobs.filter((j) => j.job.id === id)).toHaveLength(1);
    expect(
      rig.records().filter((r) => r.recipients.some((x) => x.address === 'resent@example.org')),
    ).toHaveLength(1);
  });
});

describe('SMTP connect refusal', () => {
  it('answers 554 at connect when no key allows the source address', async () => {
    const closed = await startSmtpRig({ key: { allowedCidrs: ['10.0.0.0/8', '192.168.0.0/16'] } });
    try {
      const run = await swaks(closed, ['--quit-after', 'CONNECT']);
      expect(replies(run.transcript)[0]).toBe(
        "554 5.7.1 No Baton API key allows connections from 127.0.0.1; ask your operator to add this network to a key's --cidrs",
      );
    } finally {
      await closed.close();
    }
  });
});
