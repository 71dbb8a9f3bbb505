import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from '../../local/emulators/listen.ts';
import { type AccessLogEntry, createGateway } from '../../local/runtime/http-gateway.ts';

// Local mode's console answers before the API's routes (local/console); the gateway hands it every
// request first and takes back what it declines.

let gateway: Server | undefined;
afterEach(async () => {
  if (gateway) await closeServer(gateway);
  gateway = undefined;
});

async function start(log: AccessLogEntry[]): Promise<string> {
  gateway = createGateway(
    [],
    (e) => log.push(e),
    async (req, res) => {
      if (!req.url?.startsWith('/console')) return false;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('console');
      return true;
    },
  );
  const { port } = await listenOnLoopback(gateway, { port: 0, service: 'test gateway', envVar: 'X' });
  return `http://127.0.0.1:${port}`;
}

describe('the local HTTP gateway’s pre-route handler', () => {
  it('answers the paths it takes, in the access log with its status', async () => {
    // Prepare
    const log: AccessLogEntry[] = [];
    const url = await start(log);

    // Act
    const res = await fetch(`${url}/console/x`);

    // Assess
    expect([res.status, await res.text()]).toEqual([200, 'console']);
    expect(log).toMatchObject([{ method: 'GET', path: '/console/x', status: 200 }]);
  });

  it('leaves every other path to the API’s routes', async () => {
    // Prepare
    const url = await start([]);

    // Act
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: '{}' });

    // Assess
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: 'Not Found' });
  });
});
