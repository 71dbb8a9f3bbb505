import { buildApp } from 'fauxqs';
import { isAddressInUse, LocalPortEnvVar, PortInUseError } from './errors.ts';
import {
  assertPort,
  boundAddress,
  type EmulatorOptions,
  LOOPBACK_HOST,
  type LocalEmulator,
  loopbackEmulator,
} from './listen.ts';

/** `portEnvVar` defaults to BATON_LOCAL_SQS_SNS_PORT. */
export interface StartSqsSnsOptions extends EmulatorOptions {
  /** Region used in ARNs and queue URLs when a request does not carry one. @default 'us-east-1' */
  readonly region?: string;
}

const SERVICE = 'SQS/SNS emulator (fauxqs)';

/**
 * Starts fauxqs (SQS + SNS in one in-memory server) on 127.0.0.1.
 *
 * fauxqs's own `startFauxqs()` always binds 0.0.0.0, so this builds its app and listens itself.
 * Queue URLs it returns look like `http://sqs.<region>.localhost:<port>/000000000000/<name>`, a host
 * name the resolver may not know: SQS clients need `endpoint` set to {@link LocalEmulator.endpoint}
 * and `useQueueUrlAsEndpoint: false`, so the URL only names the queue.
 *
 * @throws {PortInUseError} when the port is taken.
 */
export const startSqsSns = async (options: StartSqsSnsOptions = {}): Promise<LocalEmulator> => {
  const requestedPort = options.port ?? 0;
  assertPort(requestedPort, SERVICE);
  const app = buildApp({ logger: false, defaultRegion: options.region ?? 'us-east-1' });
  try {
    await app.listen({ port: requestedPort, host: LOOPBACK_HOST });
  } catch (error) {
    await app.close();
    if (isAddressInUse(error)) {
      throw new PortInUseError({
        service: SERVICE,
        port: requestedPort,
        host: LOOPBACK_HOST,
        envVar: options.portEnvVar ?? LocalPortEnvVar.sqsSns,
        cause: error,
      });
    }
    throw error;
  }
  // fauxqs builds Fastify with forceCloseConnections, so close() does not wait for keep-alive.
  return loopbackEmulator(boundAddress(app.server), () => app.close());
};
