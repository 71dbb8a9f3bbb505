import dynalite from 'dynalite';
import { LocalPortEnvVar } from './errors.ts';
import { assertPort, closeServer, LOOPBACK_HOST, type LocalEmulator, listenOnLoopback } from './listen.ts';

export interface StartDynamoOptions {
  /** Port on 127.0.0.1. @default 0 (the OS picks a free port) */
  readonly port?: number;
  /** Variable named in the {@link PortInUseError} message. @default BATON_LOCAL_DYNAMODB_PORT */
  readonly portEnvVar?: string;
}

const SERVICE = 'DynamoDB emulator (dynalite)';

/**
 * Starts an in-memory DynamoDB (dynalite) on 127.0.0.1.
 *
 * dynalite covers the item API (conditional writes, Query, BatchGet/BatchWrite, UpdateItem) but not
 * UpdateTimeToLive (TTL is never enforced locally) nor TransactWriteItems/TransactGetItems.
 *
 * @throws {PortInUseError} when the port is taken.
 */
export const startDynamo = async (options: StartDynamoOptions = {}): Promise<LocalEmulator> => {
  const requestedPort = options.port ?? 0;
  assertPort(requestedPort, SERVICE);
  // Zero delays: CreateTable still answers CREATING (as DynamoDB does), but the table is ACTIVE by the
  // next call, so start-up needs no waiter.
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const { port, address } = await listenOnLoopback(server, {
    port: requestedPort,
    service: SERVICE,
    envVar: options.portEnvVar ?? LocalPortEnvVar.dynamodb,
  });
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://${LOOPBACK_HOST}:${port}`,
    port,
    host: address,
    stop: () => {
      stopping ??= closeServer(server);
      return stopping;
    },
  };
};
