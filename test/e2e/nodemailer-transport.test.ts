import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { afterAll, describe, expect, it } from 'vitest';
import { type BatonError, batonTransport } from '../../clients/nodemailer-transport/index.js';
import {
  expectSentOnce,
  messageReaches,
  type TestBaton,
  waitFor,
  withTestBaton,
} from '../support/local-baton.ts';

// Issue 15 §2: an app that sends with nodemailer switches to Baton with one line, and what
// nodemailer builds (attachments, embedded images, alternatives, Bcc, custom headers) is
// delivered through local mode's real pipeline as it was built.
const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../..');
const PACKAGE = join(REPO, 'clients/nodemailer-transport');
const SUCCESS = 'success@simulator.amazonses.com';
const BCC = 'success+bcc@simulator.amazonses.com';
// A 1×1 PNG.
const PIXEL = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

const b64 = (text: string) => Buffer.from(text).toString('base64');

let baton: TestBaton;
withTestBaton((b) => {
  baton = b;
});
const scratch = mkdtempSync(join(tmpdir(), 'baton-nodemailer-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function transporter(options: { url?: string; apiKey?: string; retryDelay?: number } = {}) {
  return nodemailer.createTransport(batonTransport({ url: baton.url, apiKey: baton.apiKey, ...options }));
}

async function failure(promise: Promise<unknown>): Promise<BatonError> {
  const outcome = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (outcome === undefined) throw new Error('expected a failure');
  return outcome as BatonError;
}

/** The message as local mode's SES stand-in wrote it to the outbox. */
async function outboxMail(id: string) {
  const raw = await waitFor(`${id} in the outbox`, async () => {
    try {
      return readFileSync(join(baton.outboxDir, `${id}.eml`));
    } catch {
      return undefined;
    }
  });
  return { raw, parsed: await simpleParser(raw, { keepCidLinks: true }) };
}

describe('the nodemailer transport through local mode', () => {
  it('delivers attachments (Buffer and path), an embedded image, text and HTML, a Bcc and a custom header', async () => {
    // Prepare
    const file = join(scratch, 'terms.txt');
    writeFileSync(file, 'Terms: be nice.\n');

    // Act
    const info = await transporter().sendMail({
      from: 'Shop <orders@example.com>',
      to: `Ana <${SUCCESS}>`,
      bcc: BCC,
      subject: 'Your receipt',
      text: 'Thanks for your order.',
      html: '<p>Thanks for your order.</p><img src="cid:logo@shop" alt="logo">',
      headers: { 'X-Campaign': 'spring-2025' },
      attachments: [
        { filename: 'receipt.csv', content: Buffer.from('item,total\nbook,12\n') },
        { filename: 'terms.txt', path: file },
        { filename: 'logo.png', content: PIXEL, cid: 'logo@shop' },
      ],
    });

    // Assess: Baton's answer, as nodemailer's info
    expect(info.messageId).toMatch(/^msg_[0-9A-Z]{26}$/);
    expect(info.accepted).toEqual([SUCCESS, BCC]);
    expect(info.rejected).toEqual([]);
    expect(info.envelope).toEqual({ from: 'orders@example.com', to: [SUCCESS, BCC] });
    expect(info.baton.status).toBe('queued');

    // Assess: delivered to both, as the status API says
    const view = await messageReaches(baton, info.messageId, 'delivered');
    expect(view.recipients.map((r) => [r.address, r.status])).toEqual([
      [SUCCESS, 'delivered'],
      [BCC, 'delivered'],
    ]);
    const [sent] = baton.ses.sent().filter((s) => s.batonMessageId === info.messageId);
    expect(sent?.recipients).toEqual([SUCCESS, BCC]);

    // Assess: what was sent, as the outbox holds it
    const { raw, parsed } = await outboxMail(info.messageId);
    expect(raw.toString('latin1')).not.toMatch(/^bcc:/im);
    expect(raw.toString('latin1')).not.toContain('success+bcc');
    expect(parsed.to).toMatchObject({ value: [{ name: 'Ana', address: SUCCESS }] });
    expect(parsed.subject).toBe('Your receipt');
    expect(parsed.text?.trim()).toBe('Thanks for your order.');
    expect(parsed.html).toBe('<p>Thanks for your order.</p><img src="cid:logo@shop" alt="logo">');
    expect(parsed.headers.get('x-campaign')).toBe('spring-2025');
    // In MIME order: the image belongs to the HTML (multipart/related), before the attachments.
    expect(
      parsed.attachments.map((a) => [
        a.filename,
        a.contentDisposition,
        a.cid ?? null,
        a.content.toString('base64'),
      ]),
    ).toEqual([
      ['logo.png', 'inline', 'logo@shop', PIXEL.toString('base64')],
      ['receipt.csv', 'attachment', null, b64('item,total\nbook,12\n')],
      ['terms.txt', 'attachment', null, b64('Terms: be nice.\n')],
    ]);
    // text and HTML as alternatives, the image related to the HTML
    expect(raw.toString('latin1')).toMatch(/multipart\/alternative/i);
    expect(raw.toString('latin1')).toMatch(/multipart\/related/i);
  });

  it('answers a message sent again with the same Message-ID and bytes with the first id, refuses other bytes with 409, and sends it once', async () => {
    // Prepare
    const mail = {
      from: 'orders@example.com',
      to: SUCCESS,
      subject: 'Once',
      text: 'Only once.',
      messageId: `<once-${Date.now()}@example.com>`,
      // nodemailer dates each build; the same date makes the second send the same bytes.
      date: new Date('2025-03-01T12:00:00Z'),
    };

    // Act
    const first = await transporter().sendMail(mail);
    const again = await transporter().sendMail(mail);
    const redated = await failure(
      transporter().sendMail({ ...mail, date: new Date('2025-03-02T12:00:00Z') }),
    );

    // Assess
    expect(again.messageId).toBe(first.messageId);
    expect(redated.code).toBe('idempotency_conflict');
    expect(redated.responseCode).toBe(409);
    await messageReaches(baton, first.messageId, 'delivered');
    await expectSentOnce(baton, first.messageId);
  });

  it('reports a suppressed recipient in info.rejected, and sends to the others', async () => {
    // Prepare
    const gone = 'gone@example.org';
    const put = await baton.request(`/v1/suppressions/${gone}`, {
      method: 'PUT',
      json: { reason: 'manual' },
    });
    expect(put.status).toBe(200);

    // Act
    const info = await transporter().sendMail({
      from: 'orders@example.com',
      to: [SUCCESS, gone],
      subject: 'Hello',
      text: 'Hello.',
    });

    // Assess
    expect(info.accepted).toEqual([SUCCESS]);
    expect(info.rejected).toEqual([gone]);
    // Delivered to one, suppressed for the other: the message reads partially delivered.
    const view = await messageReaches(baton, info.messageId, 'partially_delivered');
    expect(view.recipients.map((r) => [r.address, r.status])).toEqual([
      [SUCCESS, 'delivered'],
      [gone, 'suppressed'],
    ]);
  });

  it('fails with code forbidden for a sender domain the key may not use', async () => {
    // Act
    const error = await failure(
      transporter().sendMail({ from: 'someone@elsewhere.net', to: SUCCESS, subject: 'Hi', text: 'Hi.' }),
    );

    // Assess
    expect(error.code).toBe('forbidden');
    expect(error.responseCode).toBe(403);
    expect(error.message).toMatch(/elsewhere\.net/);
  });

  it('fails with code invalid_message naming the header at fault', async () => {
    // Act
    const error = await failure(
      transporter().sendMail({
        from: 'orders@example.com',
        to: SUCCESS,
        subject: 'Hi',
        text: 'Hi.',
        headers: { 'X-Baton-Colour': 'blue' },
      }),
    );

    // Assess
    expect(error.code).toBe('invalid_message');
    expect(error.responseCode).toBe(422);
    expect(error.errors).toEqual([
      { path: 'headers.X-Baton-Colour', message: expect.stringMatching(/unknown Baton header/) },
    ]);
  });

  it('verifies a working key, and fails verify with code unauthorized for a wrong one', async () => {
    // Act
    const ok = await transporter().verify();
    const error = await failure(
      transporter({ apiKey: 'bt_wrongkey0000_abcdefghijklmnopqrstuvwxyz0123456789ABCD' }).verify(),
    );

    // Assess
    expect(ok).toBe(true);
    expect(error.code).toBe('unauthorized');
    expect(error.responseCode).toBe(401);
  });

  it('retries through a 503 and a 429 in front of Baton, and the message is sent once', async () => {
    // Prepare: a proxy that answers the first two attempts itself, then passes requests on
    const seen: string[] = [];
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        seen.push(String(req.headers['idempotency-key']));
        if (seen.length === 1) {
          res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '0' });
          res.end('{"code":"unavailable","status":503,"detail":"busy"}');
          return;
        }
        if (seen.length === 2) {
          res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '1' });
          res.end('{"code":"rate_limited","status":429,"detail":"slow down"}');
          return;
        }
        const answer = await fetch(`${baton.url}${req.url}`, {
          method: req.method ?? 'POST',
          headers: Object.fromEntries(
            Object.entries(req.headers).flatMap(([k, v]) =>
              typeof v === 'string' && k !== 'host' && k !== 'content-length' ? [[k, v]] : [],
            ),
          ),
          body: Buffer.concat(chunks),
        });
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' });
        res.end(await answer.text());
      });
    });
    await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

    try {
      // Act
      const info = await transporter({ url, retryDelay: 10 }).sendMail({
        from: 'orders@example.com',
        to: SUCCESS,
        subject: 'Retried',
        text: 'Retried.',
      });

      // Assess
      expect(seen).toHaveLength(3);
      expect(new Set(seen).size).toBe(1);
      await messageReaches(baton, info.messageId, 'delivered');
      expect(baton.ses.sent().filter((s) => s.batonMessageId === info.messageId)).toHaveLength(1);
    } finally {
      await new Promise<void>((ok) => proxy.close(() => ok()));
    }
  });

  it('runs examples/nodemailer-app.mjs, whose message is delivered', async () => {
    // Act
    const { stdout } = await run(process.execPath, [join(REPO, 'examples/nodemailer-app.mjs')], {
      env: { ...process.env, BATON_URL: baton.url, BATON_API_KEY: baton.apiKey },
      timeout: 60_000,
    });

    // Assess
    const printed = JSON.parse(stdout.trim()) as { messageId: string; accepted: string[]; status: string };
    expect(printed).toEqual({
      messageId: expect.stringMatching(/^msg_/),
      accepted: [SUCCESS, BCC],
      status: 'queued',
    });
    await messageReaches(baton, printed.messageId, 'delivered');
    const { parsed } = await outboxMail(printed.messageId);
    expect(parsed.headers.get('x-app')).toBe('nodemailer-example');
    expect(parsed.attachments.map((a) => a.filename)).toEqual(['logo.png', 'report.csv']);
  });

  it('packs into a small tarball that npm installs offline and an app imports', async () => {
    // Prepare
    const app = join(scratch, 'app');
    const npm = (args: string[], cwd: string) =>
      run('npm', args, {
        cwd,
        timeout: 60_000,
        env: { ...process.env, npm_config_update_notifier: 'false' },
      });

    // Act
    const packed = await npm(['pack', '--json', '--pack-destination', scratch], PACKAGE);
    const [tarball] = JSON.parse(packed.stdout) as Array<{
      filename: string;
      size: number;
      files: Array<{ path: string }>;
    }>;
    if (!tarball) throw new Error('npm pack made no tarball');
    writeFileSync(join(scratch, 'package.json'), '{}');
    await run('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // --legacy-peer-deps: npm would fetch the nodemailer peer from the registry; the app brings
    // its own (here the repository's, linked), as a real app has it installed already.
    await npm(
      [
        'install',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--legacy-peer-deps',
        join(scratch, tarball.filename),
      ],
      app,
    );
    symlinkSync(join(REPO, 'node_modules/nodemailer'), join(app, 'node_modules/nodemailer'), 'dir');
    writeFileSync(
      join(app, 'send.mjs'),
      `import nodemailer from 'nodemailer';
import { batonTransport } from '@baton/nodemailer-transport';
const t = nodemailer.createTransport(batonTransport({ url: process.env.BATON_URL, apiKey: process.env.BATON_API_KEY }));
const info = await t.sendMail({ from: 'orders@example.com', to: '${SUCCESS}', subject: 'Installed', text: 'From the tarball.' });
console.log(info.messageId);
`,
    );
    const sent = await run(process.execPath, ['send.mjs'], {
      cwd: app,
      env: { ...process.env, BATON_URL: baton.url, BATON_API_KEY: baton.apiKey },
      timeout: 60_000,
    });

    // Assess
    expect(tarball.files.map((f) => f.path).sort()).toEqual([
      'README.md',
      'index.d.ts',
      'index.js',
      'package.json',
    ]);
    expect(tarball.size).toBeLessThan(10_000);
    await messageReaches(baton, sent.stdout.trim(), 'delivered');
  });
});
