/** The logger the stand-in writes to; local mode may pass its own. Data objects never hold addresses or bodies. */
export interface StandinLogger {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

const line = (level: string, message: string, data?: Record<string, unknown>): string =>
  JSON.stringify({ level, service: 'ses-standin', message, ...data });

/** One JSON line per entry, like the Lambdas' structured logs, so local output reads the same. */
export const consoleLogger: StandinLogger = {
  info: (message, data) => console.log(line('INFO', message, data)),
  warn: (message, data) => console.warn(line('WARN', message, data)),
  error: (message, data) => console.error(line('ERROR', message, data)),
};

/** The same lines into a stream (local mode's `.baton/logs/ses-standin.log`). */
export const streamLogger = (stream: { write(chunk: string): unknown }): StandinLogger => ({
  info: (message, data) => stream.write(`${line('INFO', message, data)}\n`),
  warn: (message, data) => stream.write(`${line('WARN', message, data)}\n`),
  error: (message, data) => stream.write(`${line('ERROR', message, data)}\n`),
});

/** Masks every e-mail address in a text; the same rule the functions log by. */
export { redactAddresses as maskAddresses } from '../../lambdas/shared/redact.ts';
