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

const post = (url: string, timeoutMs = 5_000) =>
  new WebhookHttpPoster({ allowLoopback: true, timeoutMs }).post({
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

describe('the webhook poster: probes that held', () => {
  it.each([
    ['a malformed status line', 'HTTP/1.1 abc OK\r\n\r\n'],
    ['an invalid header', 'HTTP/1.1 200 OK\r\nX Bad: y\r\nContent-Length: 2\r\n\r\nok'],
    ['a 100 KB header', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`],
    ['two Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'],
    ['no HTTP at all', 'hello world\n'],
  ])('answers %s as a network failure at once', async (_, answer) => {
    const result = await post(await rawReceiver(answer));
    expect(result).toMatchObject({ error: 'network' });
    expect(result.latencyMs).toBeLessThan(2_000);
  });

  it('answers a chunked body that never ends by the timeout, with its status and at most 4 KiB', async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
        const drip = setInterval(
          () => (socket.destroyed ? clearInterval(drip) : socket.write('1\r\na\r\n')),
          20,
        );
        socket.on('close', () => clearInterval(drip));
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');

    const result = await post(`http://127.0.0.1:${address.port}/`, 500);

    expect(result).toMatchObject({ status: 200 });
    expect(result.latencyMs).toBeLessThan(2_000);
    expect('snippet' in result && Buffer.byteLength(result.snippet)).toBeLessThanOrEqual(4096);
  });

  it.each([
    ['localhost', '10.0.0.1', true],
    ['localhost', '::ffff:10.0.0.1', true],
    ['localhost', '169.254.169.254', true],
    ['127.0.0.1.nip.io', '127.0.0.1', true],
    ['hooks.example.com', '0.0.0.0', false],
    ['hooks.example.com', '100.64.0.1', false],
    ['hooks.example.com', '192.0.0.9', false],
    ['hooks.example.com', '198.18.0.1', false],
    ['hooks.example.com', '64:ff9b::a00:1', false],
    ['hooks.example.com', '2002:a00:1::1', false],
    ['hooks.example.com', 'fd00:ec2::254', false],
    ['hooks.example.com', 'fe80::1%eth0', false],
  ])(
    'refuses %s resolving to %s (with a public address too; local mode: %s)',
    async (name, address, local) => {
      const poster = new WebhookHttpPoster({
        allowLoopback: local,
        lookup: async () => [
          { address: '8.8.8.8', family: 4 },
          { address, family: address.includes(':') ? 6 : 4 },
        ],
      });
      const result = await poster.post({
        url: `${local ? 'http' : 'https'}://${name}/hooks`,
        body: '{}',
        headers: { 'webhook-id': 'evt_1', 'webhook-timestamp': '1', 'webhook-signature': 'v1,x' },
      });
      expect(result).toMatchObject({ error: 'refused-address' });
    },
  );
});
