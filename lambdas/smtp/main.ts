/**
 * The SMTP front door's process: `node lambdas/smtp/main.ts` in local mode, the esbuild bundle
 * `main.mjs` in the deployed container. SIGTERM (a deploy, a scale-in) drains: new commands get
 * 421, a message in flight is finished and answered, then the process exits.
 */
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
} catch (error) {
  logger.error('smtp server could not start', describeError(error));
  process.exit(1);
}
