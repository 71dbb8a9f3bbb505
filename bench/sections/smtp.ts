import { readFileSync } from 'node:fs';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { LocalBaton } from '../../local/baton-local.ts';
import { benchMessage, outboxTimes, percentile, postAll, startBenchBaton } from '../local-pipeline.ts';
import { SmtpSession } from '../smtp-client.ts';
import type { Row, Section } from './types.ts';

/** Messages per configuration (`BENCH_SMTP_MESSAGES`, default 300): a short run, about a minute. */
export const smtpMessages = (): number => Number(process.env.BENCH_SMTP_MESSAGES ?? 300);
const CONNECTIONS = [1, 16] as const;

interface Run {
  readonly messages: number;
  /** First connection opened to the last reply, ms. */
  readonly elapsedMs: number;
  /** SMTP: end of DATA → 250; HTTP: request written → 202 read. */
  readonly replyMs: readonly number[];
  readonly ids: readonly string[];
}

/**
 * The SMTP front door against the HTTP api, the same 10 KB message, in the same local mode:
 * messages accepted per second over one connection and over 16, and the time the server takes
 * to answer a message once it has it all (SMTP: the end of DATA to the 250; HTTP: the POST to
 * its 202). Each run waits for its messages to reach the SES stand-in before the next starts, so
 * one run's sending does not slow the next one's accepting.
 */
export const section: Section = {
  name: 'smtp',
  title: 'SMTP front door: messages/s over 1 and 16 connections, end of DATA → 250, next to the HTTP api',
  async run(ctx) {
    const messages = smtpMessages();
    const t0 = performance.now();
    const { baton, close } = await startBenchBaton({ smtp: { port: 0 } });
    try {
      const smtp = baton.smtp;
      if (!smtp) throw new Error('local mode started without its SMTP server');
      const ca = readFileSync(smtp.certificate.certFile);
      ctx.progress('smtp: warming up (cold starts, key cache)');
      await settle(baton, await httpRun(baton, 20, 4, 'hw'));
      await settle(baton, await smtpRun(baton, ca, 20, 4, 'sw'));
      const rows: Row[] = [];
      for (const connections of CONNECTIONS) {
        ctx.progress(`smtp: ${messages} messages over HTTP, ${connections} connection(s)`);
        const http = await httpRun(baton, messages, connections, `h${connections}_`);
        await settle(baton, http);
        ctx.progress(`smtp: ${messages} messages over SMTP, ${connections} connection(s)`);
        const mail = await smtpRun(baton, ca, messages, connections, `s${connections}_`);
        await settle(baton, mail);
        rows.push(...rowsFor(connections, mail, http));
      }
      const seconds = (performance.now() - t0) / 1000;
      rows.push({
        section: 'smtp',
        figure: 'run time (local mode start included)',
        value: Math.round(seconds),
        unit: 's',
        note: `${messages} messages per configuration (BENCH_SMTP_MESSAGES)`,
      });
      return rows;
    } finally {
      await close();
    }
  },
};

function rowsFor(connections: number, mail: Run, http: Run): Row[] {
  const s = 'smtp';
  const on = `${connections} connection${connections === 1 ? '' : 's'}`;
  const rate = (r: Run) => (r.messages / r.elapsedMs) * 1000;
  const p = (r: Run, q: number) => Math.round(percentile(r.replyMs, q) * 10) / 10;
  return [
    {
      section: s,
      figure: `${on}: SMTP messages/s (STARTTLS, AUTH, pipelined)`,
      value: rate(mail),
      unit: 'msg/s',
      floor: rate(http),
      ratio: rate(mail) / rate(http),
      note: 'base: POST /v1/messages over the same number of connections',
    },
    {
      section: s,
      figure: `${on}: SMTP end of DATA → 250 p50/p99`,
      value: `${p(mail, 50)} / ${p(mail, 99)}`,
      unit: 'ms',
      floor: `${p(http, 50)} / ${p(http, 99)} ms`,
      note: 'base: POST /v1/messages → 202 (plain HTTP locally; SMTP runs over TLS)',
    },
  ];
}

/** The bench message as an SMTP client sends it (MIME, made before the clock starts). */
async function mimeFor(label: string): Promise<{ from: string; to: string; mime: Buffer }> {
  const m = benchMessage(label);
  const to = m.to[0] ?? '';
  const mime = await new MailComposer({
    from: m.from,
    to,
    subject: m.subject,
    text: m.text,
    html: m.html,
    headers: m.headers,
  })
    .compile()
    .build();
  return { from: 'orders@example.com', to, mime };
}

/** `n` messages over `connections` SMTP sessions, each taking the next message when it is free. */
async function smtpRun(
  baton: LocalBaton,
  ca: Buffer,
  n: number,
  connections: number,
  label: string,
): Promise<Run> {
  const port = baton.smtp?.port ?? 0;
  const mails = await Promise.all(Array.from({ length: n }, (_, i) => mimeFor(`${label}${i}`)));
  const replyMs: number[] = [];
  const ids: string[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(connections, n) }, async () => {
      const session = await SmtpSession.open({ port, ca, password: baton.apiKey });
      for (let mail = mails[next++]; mail; mail = mails[next++]) {
        const sent = await session.send(mail.from, mail.to, mail.mime);
        replyMs.push(sent.dataToReplyMs);
        ids.push(sent.id);
      }
      await session.quit();
    }),
  );
  return { messages: n, elapsedMs: performance.now() - t0, replyMs, ids };
}

/** The same messages as POST /v1/messages with at most `connections` requests in flight. */
async function httpRun(baton: LocalBaton, n: number, connections: number, label: string): Promise<Run> {
  const units = Array.from({ length: n }, (_, i) => ({
    route: '/v1/messages',
    body: benchMessage(`${label}${i}`),
  }));
  const posted = await postAll(baton, units, connections);
  return {
    messages: n,
    elapsedMs: posted.lastAcceptAt - posted.firstPostAt,
    replyMs: posted.requestMs,
    ids: [...posted.acceptedAt.keys()],
  };
}

/** Waits until SES took every message of the run, so the next run starts on an idle pipeline. */
async function settle(baton: LocalBaton, run: Run): Promise<void> {
  await outboxTimes(baton, new Set(run.ids), 10 * 60_000);
}
