import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readOutbox } from '../../../local/console/outbox.ts';

// The console's view of an outbox file: what the SES stand-in wrote, parsed into the parts the
// message page shows. The id names a file, so only Baton's id format may.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'console-outbox-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const ID = 'msg_01CONSOLEOUTBOX';

async function writeMessage(name: string): Promise<Buffer> {
  const raw = await new MailComposer({
    from: 'app@example.com',
    to: 'ana@example.org',
    subject: 'Receipt',
    text: 'Thanks.',
    html: '<p>Thanks.</p><img src="cid:logo@x">',
    headers: { 'X-Order': '42' },
    attachments: [
      { filename: 'r.pdf', content: Buffer.from('%PDF'), contentType: 'application/pdf' },
      { filename: 'logo.png', content: Buffer.from('png'), contentType: 'image/png', cid: 'logo@x' },
    ],
  })
    .compile()
    .build();
  writeFileSync(join(dir, name), raw);
  return raw;
}

describe('the console outbox reader', () => {
  it('parses headers, text, HTML with inlined cid images, attachments and duplicates', async () => {
    // Prepare
    const raw = await writeMessage(`${ID}.eml`);
    await writeMessage(`${ID}.dup-0100abc.eml`);

    // Act
    const copy = await readOutbox(dir, ID);

    // Assess
    expect(copy?.raw).toBe(raw.toString('utf8'));
    expect(copy?.duplicates).toEqual([`${ID}.dup-0100abc.eml`]);
    expect(copy?.text?.trim()).toBe('Thanks.');
    expect(copy?.html).toContain('src="data:image/png;base64,');
    expect(copy?.headers).toContainEqual({ name: 'X-Order', value: '42' });
    expect(copy?.headers).toContainEqual({ name: 'Subject', value: 'Receipt' });
    // In MIME order: the related image comes before the mixed attachment.
    expect(copy?.attachments.map((a) => [a.filename, a.contentType, a.content.toString()])).toEqual([
      ['logo.png', 'image/png', 'png'],
      ['r.pdf', 'application/pdf', '%PDF'],
    ]);
  });

  it('has no copy of a message nothing was delivered for', async () => {
    // Act
    const copy = await readOutbox(dir, ID);

    // Assess
    expect(copy).toBeUndefined();
  });

  it('reads no file for a name that is not a message id', async () => {
    // Prepare
    writeFileSync(join(dir, 'secret.eml'), 'Subject: secret\r\n\r\nx');

    // Act
    const answers = await Promise.all(
      ['secret', '../secret', `${ID}/../secret`].map((id) => readOutbox(dir, id)),
    );

    // Assess
    expect(answers).toEqual([undefined, undefined, undefined]);
  });
});
