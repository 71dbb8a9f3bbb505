/**
 * An app that sends with nodemailer, switched to Baton with one line (docs/nodemailer.md): it
 * verifies the key, sends one message with an attachment, an embedded image, text and HTML, a Bcc
 * and a custom header, and prints Baton's answer as JSON.
 *
 *   npm start                                          # in another terminal: local mode
 *   BATON_API_KEY=<the key npm start printed> node examples/nodemailer-app.mjs
 *
 * BATON_URL (http://127.0.0.1:3000), MAIL_FROM (Example <hello@example.com>) and MAIL_TO
 * (success@simulator.amazonses.com, which local mode's SES stand-in delivers) change the defaults.
 * An installed app imports '@baton/nodemailer-transport' instead of the path below.
 */
import nodemailer from 'nodemailer';
import { batonTransport } from '../clients/nodemailer-transport/index.js';

const apiKey = process.env.BATON_API_KEY;
if (!apiKey) {
  console.error('Set BATON_API_KEY to the API key `npm start` printed.');
  process.exit(2);
}
const url = process.env.BATON_URL ?? 'http://127.0.0.1:3000';
const from = process.env.MAIL_FROM ?? 'Example <hello@example.com>';
const to = process.env.MAIL_TO ?? 'success@simulator.amazonses.com';

// The one line that changes: nodemailer.createTransport({ host, port, auth }) before.
const transporter = nodemailer.createTransport(batonTransport({ url, apiKey }));

// A 1×1 PNG, shown inline by the HTML through its Content-ID.
const PIXEL = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

try {
  await transporter.verify();
  const info = await transporter.sendMail({
    from,
    to,
    bcc: process.env.MAIL_BCC ?? 'success+bcc@simulator.amazonses.com',
    subject: 'Hello from nodemailer through Baton',
    text: 'Hello! Your report is attached.',
    html: '<p>Hello! Your report is attached.</p><p><img src="cid:logo@example" alt="logo"></p>',
    headers: { 'X-App': 'nodemailer-example' },
    attachments: [
      { filename: 'report.csv', content: Buffer.from('day,sent\n2025-03-01,1\n') },
      { filename: 'logo.png', content: PIXEL, cid: 'logo@example' },
    ],
  });
  console.log(
    JSON.stringify({ messageId: info.messageId, accepted: info.accepted, status: info.baton.status }),
  );
} catch (error) {
  console.error(`Baton refused the message: ${error.code} ${error.responseCode ?? ''} ${error.message}`);
  for (const e of error.errors ?? []) console.error(`  ${e.path}: ${e.message}`);
  process.exit(1);
}
