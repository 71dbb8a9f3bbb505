/**
 * Environment variables local mode reads to move an emulator to another port. They live here so the
 * error that tells a developer which variable to change cannot name a variable local mode ignores.
 * `0` means "let the OS pick a free port".
 */
export const LocalPortEnvVar = {
  dynamodb: 'BATON_LOCAL_DYNAMODB_PORT',
  sqsSns: 'BATON_LOCAL_SQS_SNS_PORT',
  ses: 'BATON_LOCAL_SES_PORT',
} as const;

export interface PortInUseErrorOptions {
  /** Human name of the service that could not start, e.g. `DynamoDB emulator (dynalite)`. */
  readonly service: string;
  readonly port: number;
  readonly host: string;
  /** The variable that moves the service elsewhere; named in the message. */
  readonly envVar: string;
  readonly cause?: unknown;
}

/**
 * A local emulator could not bind its port because something else holds it (often a previous
 * `npm start` still running). Local mode prints the message and exits non-zero, so the message has
 * to be enough on its own to fix the problem.
 */
export class PortInUseError extends Error {
  readonly service: string;
  readonly port: number;
  readonly host: string;
  readonly envVar: string;

  constructor(options: PortInUseErrorOptions) {
    super(
      `${options.service} cannot listen on ${options.host}:${options.port}: the port is already in use. ` +
        `Stop the process holding it (is another \`npm start\` running?) or choose another port with ` +
        `${options.envVar}=<port> (${options.envVar}=0 picks a free one).`,
      { cause: options.cause },
    );
    this.name = 'PortInUseError';
    this.service = options.service;
    this.port = options.port;
    this.host = options.host;
    this.envVar = options.envVar;
  }
}

/** True for the `EADDRINUSE` error Node raises from `listen`, whichever server library wraps it. */
export const isAddressInUse = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && 'code' in error && error.code === 'EADDRINUSE';
