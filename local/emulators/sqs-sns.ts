import { buildApp } from 'fauxqs';
import { isAddressInUse, LocalPortEnvVar, PortInUseError } from './errors.ts';
import { assertPort, boundAddress, LOOPBACK_HOST, type LocalEmulator } from './listen.ts';

export interface StartSqsSnsOptions {
  /** Port on 127.0.0.1. @default 0 (the OS picks a free port) */
  readonly port?: number;
  /** Region used in ARNs and queue URLs when a request does not carry one. @default 'us-east-1' */
  readonly region?: string;
  /** Variable named in the {@link PortInUseError} message. @default BATON_LOCAL_SQS_SNS_PORT */
  readonly portEnvVar?: string;
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
  const { port, address } = boundAddress(app.server);
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://${LOOPBACK_HOST}:${port}`,
    port,
    host: address,
    stop: () => {
      // fauxqs builds Fastify with forceCloseConnections, so close() does not wait for keep-alive.
      stopping ??= app.close();
      return stopping;
    },
  };
};
