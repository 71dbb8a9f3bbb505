import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isAddressInUse, PortInUseError } from './errors.ts';

/** Every local stand-in binds loopback only: local mode must never expose an unauthenticated AWS API. */
export const LOOPBACK_HOST = '127.0.0.1';

export interface LocalEmulator {
  /** Base URL for SDK clients (`endpoint`, or `AWS_ENDPOINT_URL_<SERVICE>`). */
  readonly endpoint: string;
  readonly port: number;
  /** The address the server is bound to; always 127.0.0.1. */
  readonly host: string;
  stop(): Promise<void>;
}

/** The options every emulator takes. */
export interface EmulatorOptions {
  /** Port on 127.0.0.1. @default 0 (the OS picks a free port) */
  readonly port?: number;
  /** Variable named in the {@link PortInUseError} message. @default the emulator's `LocalPortEnvVar` */
  readonly portEnvVar?: string;
}

/**
 * The handle of an emulator listening on `address`: its base URL, and a `stop` that runs `close`
 * once however often it is called (local mode and a test's `afterAll` may both stop it).
 */
export const loopbackEmulator = (address: AddressInfo, close: () => Promise<void>): LocalEmulator => {
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://${LOOPBACK_HOST}:${address.port}`,
    port: address.port,
    host: address.address,
    stop: () => {
      stopping ??= close();
      return stopping;
    },
  };
};

export interface ListenTarget {
  readonly port: number;
  readonly service: string;
  readonly envVar: string;
}

/** The port a listening server actually got (the OS picks it when asked for port 0). */
export const boundAddress = (server: Server): AddressInfo => {
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new Error('server is not listening on a TCP port');
  }
  return address;
};

/** Listens on loopback and turns `EADDRINUSE` into a {@link PortInUseError} that names the fix. */
export const listenOnLoopback = (server: Server, target: ListenTarget): Promise<AddressInfo> =>
  new Promise((resolve, reject) => {
    const onError = (error: unknown): void => {
      server.off('listening', onListening);
      reject(
        isAddressInUse(error)
          ? new PortInUseError({ ...target, host: LOOPBACK_HOST, cause: error })
          : (error as Error),
      );
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(boundAddress(server));
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(target.port, LOOPBACK_HOST);
  });

/**
 * Closes a server without waiting for idle keep-alive sockets: the SDK keeps connections open, and
 * a plain `close()` would wait for them to time out (seconds per test file).
 */
export const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve, reject) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });

/** Validates a port option before binding, so a typo fails with a message rather than an OS error. */
export const assertPort = (port: number, service: string): void => {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(`${service}: port must be an integer from 0 to 65535, got ${String(port)}`);
  }
};
