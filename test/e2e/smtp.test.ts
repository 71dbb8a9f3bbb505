import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { simpleParser } from 'mailparser';
import { createTransport } from 'nodemailer';
import { describe, expect, it } from 'vitest';
import type { MessageView } from '../../lambdas/domain/reporting/status.ts';
import { seedApiKey } from '../support/e2e-keys.ts';
import { type TestBaton, waitFor, withTestBaton } from '../support/local-baton.ts';

// The SMTP front door through local mode, as the "done when" runs it: a real client
// (swaks, nodemailer) → the SMTP process → the real pipeline → the outbox and the status API.
let baton: TestBaton;
withTestBaton(
  (b) => {
    baton = b;
  },
  { smtp: { port: 0 } },
);

function smtpPort(): number {
  const port = baton.smtp?.port;
  if (port === undefined) throw new Error('local mode started without SMTP');
  return port;
}

/** Asynchronous: the emulators the SMTP process talks to run in this process. */
function swaks(args: readonly string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'swaks',
      ['--server', `127.0.0.1:${smtpPort()}`, ...args],
      { encoding: 'utf8', timeout: 30_000 },
      (error, stdout, stderr) => {
        const status = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ status, output: `${stdout}${stderr}` });
      },
    );
  });
}

function queuedId(output: string): string {
  const id = /250 2\.6\.0 Ok: queued as (msg_[0-9A-Z]{26})/.exec(output)?.[1];
  if (!id) throw new Error(`no "queued as" reply in:\n${output}`);
  return id;
}

async function settled(id: string, status: string, auth?: string): Promise<MessageView> {
  return waitFor(`${id} ${status}`, async () => {
    const res = await baton.request(`/v1/messages/${id}`, auth === undefined ? {} : { auth });
    if (res.status !== 200) return undefined;
    const view = (await res.json()) as MessageView;
    return view.status === status ? view : undefined;
  });
}

function outbox(id: string): Buffer {
  const file = join(baton.outboxDir, `${id}.eml`);
  if (!existsSync(file)) throw new Error(`${id} is not in the outbox`);
  return readFileSync(file);
}

describe('SMTP in local mode', () => {
  it('queues a message sent with swaks over STARTTLS and AUTH, signs it, and shows it delivered', async () => {
    const { status, output } = await swaks([
      '--tls',
      '--auth-user',
      'x',
      '--auth-password',
      baton.apiKey,
      '--from',
      'app@example.com',
      '--to',
      'success@simulator.amazonses.com',
    ]);

    expect(status, output).toBe(0);
    const id = queuedId(output);
    const view = await settled(id, 'delivered');
    expect(view.recipients).toEqual([
      expect.objectContaining({ address: 'success@simulator.amazonses.com', status: 'delivered' }),
    ]);
    const raw = await waitFor('the outbox file', async () =>
      existsSync(join(baton.outboxDir, `${id}.eml`)) ? outbox(id) : undefined,
    );
    const record = baton.dkimRecords[0];
    const dkim = await dkimVerify(raw, {
      resolver: async (name: string, type: string) => {
        if (type === 'TXT' && name === record?.name) return [[record.value]];
        throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      },
    });
    expect(dkim.results[0]?.status.result).toBe('pass');
    expect(dkim.results[0]?.signingDomain).toBe('example.com');
  });

  it('refuses a message without AUTH from a network no key relays for', async () => {
    const { output } = await swaks([
      '--tls',
      '--from',
      'app@example.com',
      '--to',
      'success@simulator.amazonses.com',
    ]);

    expect(output).toContain('530 5.7.0 Authentication required');
  });

  it('relays without AUTH for the key of the source network, rewriting a legacy sender', async () => {
    const token = await seedApiKey(baton, {
      tenant: 'printers',
      allowedCidrs: ['127.0.0.1/32'],
      senderPolicy: 'rewrite',
      defaultFrom: 'relay@example.com',
      smtpWithoutAuth: true,
    });
    // The key directory is cached for BATON_KEY_CACHE_SECONDS (1 s in tests).
    const output = await waitFor('the relay key', async () => {
      const run = await swaks([
        '--from',
        'scanner@legacy-printer.example',
        '--to',
        'success@simulator.amazonses.com',
        '--header',
        'From: Scanner <scanner@legacy-printer.example>',
      ]);
      return run.output.includes('queued as') ? run.output : undefined;
    });

    const id = queuedId(output);
    // Recorded under the relay key's tenant: the status API shows it to that tenant's keys.
    await settled(id, 'delivered', token);
    const sent = await simpleParser(outbox(id));
    expect(sent.from?.value[0]?.address).toBe('relay@example.com');
    expect(sent.replyTo?.value[0]?.address).toBe('scanner@legacy-printer.example');
    expect(sent.headers.get('x-original-from')).toBe('Scanner <scanner@legacy-printer.example>');
  });

  it('carries a 10 MB message with attachments byte-identical to the outbox', async () => {
    const first = randomBytes(6 * 1024 * 1024);
    const second = randomBytes(1024 * 1024);
    const transport = createTransport({
      host: '127.0.0.1',
      port: smtpPort(),
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'app', pass: baton.apiKey },
    });
    const info = await transport.sendMail({
      from: 'app@example.com',
      to: 'success@simulator.amazonses.com',
      subject: 'Quarterly scans',
      text: 'Two files attached.',
      attachments: [
        { filename: 'scan.pdf', content: first, contentType: 'application/pdf' },
        { filename: 'data.bin', content: second },
      ],
    });
    transport.close();

    const id = /queued as (msg_[0-9A-Z]{26})/.exec(info.response)?.[1] ?? '';
    expect(info.response).toContain('queued as msg_');
    await settled(id, 'delivered');
    const sent = await simpleParser(outbox(id));
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sent.attachments.map((a) => [a.filename, digest(a.content)])).toEqual([
      ['scan.pdf', digest(first)],
      ['data.bin', digest(second)],
    ]);
  });
});
