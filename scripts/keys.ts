/**
 * `npm run keys -- <command>`: create, list, show, suspend, resume and revoke API keys, in local
 * mode or a deployed stack (docs/keys.md). Run with `node scripts/keys.ts`.
 */
import { ApiKeyNotFoundError, ApiKeyRevokedError } from '../lambdas/domain/keys/api-key.ts';
import {
  CommandFailedError,
  EXIT_FAILURE,
  EXIT_USAGE,
  type KeysCommand,
  parseKeysArgs,
  runKeysCommand,
  USAGE,
  UsageError,
} from './keys-cli.ts';
import { openTarget, type Target } from './keys-target.ts';

const io = {
  out: (text: string) => process.stdout.write(`${text}\n`),
  err: (text: string) => process.stderr.write(`${text}\n`),
};

async function main(argv: readonly string[]): Promise<number> {
  let command: KeysCommand;
  try {
    command = parseKeysArgs(argv, process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${error.message}\nRun "npm run keys -- --help" for usage.`);
    return EXIT_USAGE;
  }
  if (command.command === 'help') {
    io.out(USAGE);
    return 0;
  }

  let target: Target | undefined;
  try {
    target = await openTarget(command.target);
    await runKeysCommand(command, target, io);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(error.message);
      return EXIT_USAGE;
    }
    io.err(failureMessage(error, target));
    return EXIT_FAILURE;
  } finally {
    target?.close();
  }
}

function failureMessage(error: unknown, target: Target | undefined): string {
  const where = target ? ` (${target.description}, table ${target.table})` : '';
  if (error instanceof CommandFailedError) return error.message;
  if (error instanceof ApiKeyNotFoundError) return `No API key has the id ${error.keyId}${where}.`;
  if (error instanceof ApiKeyRevokedError) {
    return `Key ${error.keyId} is revoked, which is permanent: it cannot be resumed or suspended. Create a new key instead.`;
  }
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'ResourceNotFoundException') return `The ApiKeys table does not exist${where}.`;
  if (name === 'TransientError') {
    const cause = (error as Error).cause as { code?: string; message?: string } | undefined;
    return `Could not reach DynamoDB${where}: ${cause?.code ?? cause?.message ?? message}. Is it running and reachable? Try again.`;
  }
  return `Failed${where}: ${name}: ${message}`;
}

process.exitCode = await main(process.argv.slice(2));
