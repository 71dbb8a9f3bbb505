/**
 * A stand-in for Baton's HTTP API on 127.0.0.1, for the nodemailer transport's tests: each request
 * is recorded and answered by the next scripted answer (the last one repeats).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** When it arrived (ms since the epoch). */
  readonly at: number;
}

export type ScriptedAnswer =
  | {
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Readonly<Record<string, string>>;
      /** Answer only after this many ms. */
      readonly delayMs?: number;
    }
  /** Close the connection without answering. */
  | 'hang-up';

export interface FakeBaton {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Replaces the script. */
  answer(...answers: ScriptedAnswer[]): void;
  close(): Promise<void>;
}

export async function startFakeBaton(...answers: ScriptedAnswer[]): Promise<FakeBaton> {
  let script = [...answers];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const next = script.length > 1 ? script.shift() : script[0];
      if (next === undefined || next === 'hang-up') {
        req.socket.destroy();
        return;
      }
      const send = () => {
        const problem = next.status >= 400;
        res.writeHead(next.status, {
          'content-type': problem ? 'application/problem+json' : 'application/json',
          ...next.headers,
        });
        res.end(next.body === undefined ? '' : JSON.stringify(next.body));
      };
      if (next.delayMs) setTimeout(send, next.delayMs);
      else send();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answer: (...next) => {
      script = [...next];
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A Baton problem body. */
export function problemBody(status: number, code: string, detail: string, errors?: unknown[]) {
  return {
    type: `urn:baton:problem:${code}`,
    title: code,
    status,
    detail,
    code,
    ...(errors ? { errors } : {}),
  };
}
