/**
 * Relay by source address, as a classic relay allowlist does: a key created with
 * `--smtp-without-auth` and CIDRs lets hosts on those networks send without AUTH (a printer, a
 * NAS), with the key's sender policy (here `rewrite`). swaks sends without any credentials.
 */
import '../support/quiet-powertools.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastReply, python, type SmtpRig, startSmtpRig, swaks } from '../support/smtp.ts';

const withoutAuth = { smtpWithoutAuth: true } as const;

let rig: SmtpRig;
beforeAll(async () => {
  rig = await startSmtpRig({
    key: {
      ...withoutAuth,
      allowedCidrs: ['127.0.0.0/8'],
      senderPolicy: 'rewrite',
      defaultFrom: 'printer@example.com',
    },
  });
});
afterAll(async () => {
  await rig?.close();
});

describe('SMTP relay without AUTH from an allowed network', () => {
  it('takes mail from the network without AUTH and sends it from the key default address (rewrite)', async () => {
    const run = await swaks(rig, [
      '--tls',
      '--from',
      'scanner@office.example.net',
      '--to',
      'relay@example.org',
      '--header',
      'From: Scanner <scanner@office.example.net>',
    ]);
    const reply = lastReply(run.transcript);
    expect(reply).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
    const message = rig.jobFor(reply.split(' ').at(-1) as string)?.message;
    expect(message?.from.address).toBe('printer@example.com');
    expect(message?.originalFrom?.address).toBe('scanner@office.example.net');
    expect(message?.replyTo.map((m) => m.address)).toEqual(['scanner@office.example.net']);
  });

  it('takes it on a connection that never starts TLS too (a printer that cannot)', async () => {
    const run = await swaks(rig, ['--from', 'scanner@office.example.net', '--to', 'plain@example.org']);
    expect(lastReply(run.transcript)).toMatch(/^250 2\.6\.0 Ok: queued as msg_\d+$/);
  });

  it('takes several messages on one connection without AUTH (smtplib)', async () => {
    const run = await python(
      rig,
      `
s = connect(tls=False, auth=False)
for i in range(12):
    s.mail('scanner@office.example.net'); s.rcpt('scan-%d@example.org' % i)
    code, text = s.data(b'Subject: scan\\r\\n\\r\\nPage.\\r\\n')
    say(code)
s.quit()
`,
    );
    expect(run.transcript.trim().split('\n')).toEqual(Array(12).fill('250'));
  });

  it('stops relaying at the next MAIL FROM once the key is suspended', async () => {
    await rig.keys.setStatus(rig.key.keyId, 'suspended');
    try {
      const run = await swaks(rig, ['--from', 'scanner@office.example.net', '--to', 'stopped@example.org']);
      expect(lastReply(run.transcript)).toMatch(/^553 5\.7\.1 This API key is suspended\.$/);
    } finally {
      await rig.keys.setStatus(rig.key.keyId, 'active');
    }
  });
});

describe('SMTP relay without AUTH from elsewhere', () => {
  it('asks a source outside the relay key networks to authenticate (530)', async () => {
    const other = await startSmtpRig({ key: { ...withoutAuth, allowedCidrs: ['10.0.0.0/8'] } });
    try {
      // Another key without CIDRs lets the connection in; only AUTH would make it send.
      other.addKey();
      const run = await swaks(other, ['--tls', '--from', 'app@example.com', '--to', 'elsewhere@example.org']);
      expect(lastReply(run.transcript)).toBe(
        '530 5.7.0 Authentication required: AUTH with your Baton API key as the password',
      );
    } finally {
      await other.close();
    }
  });
});
