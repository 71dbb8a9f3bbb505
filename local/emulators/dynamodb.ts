import dynalite from 'dynalite';
import { LocalPortEnvVar } from './errors.ts';
import {
  assertPort,
  closeServer,
  type EmulatorOptions,
  type LocalEmulator,
  listenOnLoopback,
  loopbackEmulator,
} from './listen.ts';

/** `portEnvVar` defaults to BATON_LOCAL_DYNAMODB_PORT. */
export type StartDynamoOptions = EmulatorOptions;

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
  const address = await listenOnLoopback(server, {
    port: requestedPort,
    service: SERVICE,
    envVar: options.portEnvVar ?? LocalPortEnvVar.dynamodb,
  });
  return loopbackEmulator(address, () => closeServer(server));
};
