/**
 * Section cpu (issue 7, part 3): handler CPU per unit, in process, no network, medians over
 * `ctx.iterations` (≥ 1,000) runs: the api (validate + policy, and whole requests), the sender
 * (MIME + DKIM, and the whole record), feedback (parse + apply per event kind). The harnesses are
 * bench/api-cpu.ts, bench/sender.ts and bench/feedback.ts, which `npm run bench:<name>` also runs.
 */
import { API_BATCH_SIZE, measureApiCpu } from '../api-cpu.ts';
import { KINDS, measureFeedbackCpu } from '../feedback.ts';
import { measureSenderCpu } from '../sender.ts';
import type { Row, Section } from './types.ts';

const ms = (us: number) => us / 1000;

export const section: Section = {
  name: 'cpu',
  title: 'handler CPU per unit, in process (median)',
  async run(ctx) {
    const n = ctx.iterations;
    ctx.progress(`cpu: api (${n} requests)`);
    const api = await measureApiCpu(n);
    ctx.progress(`cpu: sender (${n} messages)`);
    const sender = await measureSenderCpu(n);
    ctx.progress(`cpu: feedback (${n} events per kind)`);
    const feedback = await measureFeedbackCpu(n);

    ctx.shared.cpu = {
      apiRequestUs: api.request.cpuUs,
      apiBatchUs: api.batch.cpuUs,
      apiBatchSize: API_BATCH_SIZE,
      apiValidateUs: api.validate.cpuUs,
      senderMimeDkimUs: sender.composeAndSign.cpuUs,
      senderRecordUs: sender.wholeRecord.cpuUs,
      feedbackUs: feedback,
    };
    const kb = (bytes: number) => (bytes / 1024).toFixed(1);
    const row = (figure: string, us: number, note?: string): Row => ({
      section: 'cpu',
      figure,
      value: ms(us),
      unit: 'ms',
      ...(note ? { note } : {}),
    });
    return [
      row(
        'api: validate + sender policy, 10 KB message',
        api.validate.cpuUs,
        `${n} runs; JSON body ${kb(api.bodyBytes)} KB`,
      ),
      row(
        'api: POST /v1/messages, whole request',
        api.request.cpuUs,
        'routing, auth, validation, policy, accept; in-memory stores',
      ),
      row(
        `api: POST /v1/messages/batch, per message (${API_BATCH_SIZE} per request)`,
        api.batch.cpuUs / API_BATCH_SIZE,
        `${api.batchIterations} requests of ${API_BATCH_SIZE} × 10 KB`,
      ),
      row(
        'sender: MIME + DKIM (RSA 2048), 10 KB message',
        sender.composeAndSign.cpuUs,
        `raw ${kb(sender.unsignedBytes)} KB → signed ${kb(sender.signedBytes)} KB; MIME alone ${ms(sender.composeOnly.cpuUs).toFixed(3)} ms`,
      ),
      row(
        'sender: one SQS record, whole (parse, claim, MIME, DKIM, send, status)',
        sender.wholeRecord.cpuUs,
        'in-memory stores, unpaced fake SES',
      ),
      ...KINDS.map((kind) =>
        row(
          `feedback: ${kind} event, parse + apply`,
          feedback[kind],
          kind === 'send' ? 'published for every message; changes nothing' : undefined,
        ),
      ),
    ];
  },
};
