/**
 * The SMTP front door's process: `node lambdas/smtp/main.ts` in local mode, the esbuild bundle
 * `main.mjs` in the deployed container. SIGTERM (a deploy, a scale-in) drains: new commands get
 * 421, a message in flight is finished and answered, then the process exits.
 */
import { EnvVar } from '../shared/names.ts';
import { describeError, logger } from '../shared/observability.ts';
import { startSmtp } from './app.ts';

try {
  const running = await startSmtp();
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('smtp draining', { signal });
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('smtp drain failed', describeError(error));
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Local mode starts this process with a pipe as stdin: when `npm start` dies, even by SIGKILL,
  // the pipe closes and the server goes with it instead of holding its port.
  if (process.env[EnvVar.smtpLocal] === '1' && !process.stdin.isTTY) {
    process.stdin.on('end', () => stop('parent exited'));
    process.stdin.resume();
  }
} catch (error) {
  logger.error('smtp server could not start', describeError(error));
  process.exit(1);
}
