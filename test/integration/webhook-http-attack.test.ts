/**
 * Probes of the webhook poster against raw TCP receivers that answer what no HTTP server library
 * would (issue 14, attack pass). Each answers a PostResult, without waiting out the timeout when
 * the receiver has plainly answered.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebhookHttpPoster } from '../../lambdas/adapters/webhook-http.ts';

let server: Server | undefined;
const sockets = new Set<Socket>();

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A receiver that writes `answer` once the request's first bytes arrive. */
async function rawReceiver(answer: string): Promise<string> {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => socket.write(answer));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}/hooks`;
}

const post = (url: string) =>
  new WebhookHttpPoster({ allowLoopback: true, timeoutMs: 5_000 }).post({
    url,
    body: '{}',
    headers: { 'webhook-id': 'evt_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' },
  });

describe('the webhook poster against odd receivers', () => {
  it('answers a 101 Switching Protocols at once, as a status, not by waiting out the timeout', async () => {
    // Prepare
    const url = await rawReceiver(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello',
    );

    // Act
    const result = await post(url);

    // Assess
    expect(result).toMatchObject({ status: 101 });
    expect(result.latencyMs).toBeLessThan(2_000);
  });
});
