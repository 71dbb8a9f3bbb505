import { request } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { seedApiKey } from '../support/e2e-keys.ts';
import {
  outboxFilesOf,
  receipt,
  startTestBaton,
  type TestBaton,
  waitFor,
  withTestBaton,
} from '../support/local-baton.ts';

// The console acts for the development key's tenant only. A message another tenant's key sent
// lands in the same Messages table and the same outbox folder, and must stay out of every console
// view. Local mode must also outlive a request target the URL parser refuses.

let baton: TestBaton;
let theirs = '';
let ours = '';

withTestBaton(async (started) => {
  baton = started;
  const other = await seedApiKey(baton, { tenant: 'e2e-console-other' });
  const sent = await baton.request('/v1/messages', {
    auth: other,
    json: receipt('success@simulator.amazonses.com', { subject: 'theirs-secret-subject' }),
  });
  expect(sent.status).toBe(202);
  theirs = ((await sent.json()) as { id: string }).id;
  const mine = await baton.request('/v1/messages', {
    json: receipt('success@simulator.amazonses.com', { subject: 'ours-subject' }),
  });
  ours = ((await mine.json()) as { id: string }).id;
  await waitFor('both outbox copies', async () =>
    outboxFilesOf(baton, theirs).length > 0 && outboxFilesOf(baton, ours).length > 0 ? true : undefined,
  );
});

describe('console attack: another tenant in local mode', () => {
  it('lists, opens and streams none of another tenant’s messages', async () => {
    // Act
    const landing = await (await fetch(`${baton.consoleUrl}`)).text();
    const statuses = [];
    for (const suffix of ['', '/html', '/raw', '/attachments/0'])
      statuses.push((await fetch(`${baton.consoleUrl}/messages/${theirs}${suffix}`)).status);
    const stream = await fetch(`${baton.consoleUrl}/events`);
    const reader = stream.body?.getReader();
    let frames = '';
    while (!frames.includes('event: change'))
      frames += new TextDecoder().decode((await reader?.read())?.value);
    await reader?.cancel();

    // Assess
    expect(landing).toContain('ours-subject');
    expect(landing).not.toContain(theirs);
    expect(landing).not.toContain('theirs-secret-subject');
    expect(statuses).toEqual([404, 404, 404, 404]);
    expect(frames).toContain(ours);
    expect(frames).not.toContain(theirs);
  });

  it('answers a request target the URL parser refuses with 400, and keeps serving', async () => {
    // Act
    const { port } = new URL(baton.url);
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      let data = '';
      socket.on('data', (c) => {
        data += c.toString('latin1');
        socket.end();
      });
      socket.on('close', () => resolve(data));
      socket.write(`GET //[ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    });
    const after = await fetch(`${baton.consoleUrl}/no-such-page`);

    // Assess
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(after.status).toBe(404);
  });
});

describe('console attack: stopping local mode with event streams open', () => {
  it('ends every stream and stops promptly', async () => {
    // Prepare: a second local mode, with a few streams that never read.
    const other = await startTestBaton();
    const ends: Array<Promise<string>> = [];
    for (let i = 0; i < 3; i++) {
      const opened = await new Promise<{ ended: Promise<string> }>((resolve) => {
        request(`${other.consoleUrl}/events`, (res) => {
          resolve({
            // The client never reads: its connection closing is what shows the stream ended.
            ended: new Promise((done) => res.socket.on('close', () => done('closed'))),
          });
        }).end();
      });
      ends.push(opened.ended);
    }

    // Act
    const started = Date.now();
    await other.close();

    // Assess
    expect(await Promise.all(ends)).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);
});
