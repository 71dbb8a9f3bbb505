/**
 * One Lambda execution environment: a process that imports the function's real handler module
 * (cold start, module-scope clients and all) and runs one invocation at a time, like Lambda.
 * Started by `function-pool.ts` with the function's environment from the template.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ChildMessage, type InvokeMessage, serializeError } from './protocol.ts';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

function send(message: ChildMessage): void {
  process.send?.(message);
}

async function loadHandler(entry: string | undefined): Promise<Handler> {
  if (!entry) throw new Error('no handler entry given');
  const mod = (await import(pathToFileURL(resolve(entry)).href)) as { handler?: unknown };
  if (typeof mod.handler !== 'function') throw new Error(`${entry} exports no handler function`);
  return mod.handler as Handler;
}

let handler: Handler;
try {
  handler = await loadHandler(process.argv[2]);
} catch (error) {
  // Like a failed Lambda init: report why, then exit once the message has left.
  process.send?.({ type: 'init-error', error: serializeError(error) } satisfies ChildMessage, () =>
    process.exit(1),
  );
  await new Promise<never>(() => {});
}

const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'local';

process.on('message', async (message: InvokeMessage) => {
  if (message?.type !== 'invoke') return;
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '256',
    awsRequestId: message.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
  try {
    const result = await handler(message.event, context);
    send({ type: 'result', id: message.id, result });
  } catch (error) {
    send({ type: 'error', id: message.id, error: serializeError(error) });
  }
});

// Exit with the parent: an orphaned function process must never linger after Ctrl-C.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
