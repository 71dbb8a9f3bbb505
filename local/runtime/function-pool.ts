import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, InvokeMessage, SerializedError } from './protocol.ts';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));

export interface FunctionSpec {
  /** The function's logical id in the template. */
  readonly name: string;
  /** Absolute path of the handler module. */
  readonly entry: string;
  /** The whole environment of the function process (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** How many invocations may run at once (one process each, as Lambda runs one per environment). */
  readonly maxConcurrency: number;
  /**
   * Where the processes' stdout and stderr (the structured logs) go: a stream they are piped into,
   * or the descriptor of a file opened for appending, which they write to themselves (no pass
   * through this process, which also runs the emulators).
   */
  readonly log: Writable | number;
}

export type InvokeResult =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: SerializedError };

interface Worker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  busy: boolean;
  pending?: { id: number; resolve: (r: InvokeResult) => void; timer: NodeJS.Timeout };
}

/**
 * Runs a function's handler in separate Node processes, one invocation per process at a time, up
 * to the function's concurrency: module state, cold starts, timeouts and crashes behave as on
 * Lambda. A process that times out or dies is replaced by a fresh one on the next invocation.
 */
export class FunctionPool {
  readonly spec: FunctionSpec;
  readonly #workers = new Set<Worker>();
  readonly #waiting: Array<() => void> = [];
  #nextId = 1;
  #stopped = false;

  constructor(spec: FunctionSpec) {
    this.spec = spec;
  }

  /** Starts one warm process; rejects with the init error if the handler cannot load. */
  async start(): Promise<void> {
    const worker = this.#spawn();
    await worker.ready;
  }

  async invoke(event: unknown): Promise<InvokeResult> {
    if (this.#stopped) return { ok: false, error: { name: 'Stopped', message: 'local mode is stopping' } };
    const worker = await this.#acquire();
    if (!worker) return { ok: false, error: { name: 'Stopped', message: 'local mode is stopping' } };
    try {
      await worker.ready;
    } catch (error) {
      this.#release(worker);
      return { ok: false, error: { name: 'InitError', message: (error as Error).message } };
    }
    return new Promise<InvokeResult>((resolve) => {
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        // Lambda ends a timed-out invocation by discarding its environment; so do we. It leaves
        // the pool first, so the next invocation cannot pick the dying process.
        this.#workers.delete(worker);
        worker.child.kill('SIGKILL');
        this.#finish(worker, {
          ok: false,
          error: {
            name: 'TimeoutError',
            message: `Task timed out after ${this.spec.timeoutMs / 1000} seconds`,
          },
        });
      }, this.spec.timeoutMs);
      worker.pending = { id, resolve, timer };
      const message: InvokeMessage = {
        type: 'invoke',
        id,
        event,
        deadline: Date.now() + this.spec.timeoutMs,
        requestId: randomUUID(),
      };
      worker.child.send(message, (error) => {
        // The process died between acquire and send: its exit handler answers the call.
        if (error) worker.child.kill('SIGKILL');
      });
    });
  }

  /** Kills every process now, mid-invocation (fault injection: the soak test uses this). */
  killAll(): number {
    let killed = 0;
    for (const w of this.#workers) {
      if (w.child.kill('SIGKILL')) killed++;
    }
    return killed;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const exits = [...this.#workers].map(
      (w) =>
        new Promise<void>((resolve) =>
          w.child.exitCode !== null ? resolve() : w.child.once('exit', () => resolve()),
        ),
    );
    for (const w of this.#workers) w.child.kill('SIGTERM');
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 2000))]);
    this.killAll();
    for (const wake of this.#waiting.splice(0)) wake();
  }

  async #acquire(): Promise<Worker | undefined> {
    for (;;) {
      if (this.#stopped) return undefined;
      for (const w of this.#workers) {
        if (!w.busy) {
          w.busy = true;
          return w;
        }
      }
      if (this.#workers.size < this.spec.maxConcurrency) {
        const w = this.#spawn();
        w.busy = true;
        return w;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #release(worker: Worker): void {
    worker.busy = false;
    this.#waiting.shift()?.();
  }

  #finish(worker: Worker, result: InvokeResult): void {
    const pending = worker.pending;
    if (!pending) return;
    worker.pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(result);
    this.#release(worker);
  }

  #spawn(): Worker {
    const child = fork(CHILD, [this.spec.entry], {
      env: { ...this.spec.env },
      execArgv: ['--enable-source-maps'],
      stdio:
        typeof this.spec.log === 'number'
          ? ['ignore', this.spec.log, this.spec.log, 'ipc']
          : ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    // Without a listener, an IPC write to a process that just died would crash local mode.
    child.on('error', () => {});
    if (typeof this.spec.log !== 'number') {
      child.stdout?.pipe(this.spec.log, { end: false });
      child.stderr?.pipe(this.spec.log, { end: false });
    }
    let markReady: () => void = () => {};
    let markFailed: (e: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    ready.catch(() => {});
    const worker: Worker = { child, ready, busy: false };
    this.#workers.add(worker);

    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') markReady();
      else if (message.type === 'init-error')
        markFailed(new Error(`${this.spec.name} failed to start: ${message.error.message}`));
      else if (message.type === 'result' && worker.pending?.id === message.id)
        this.#finish(worker, { ok: true, result: message.result });
      else if (message.type === 'error' && worker.pending?.id === message.id)
        this.#finish(worker, { ok: false, error: message.error });
    });
    child.on('exit', (code, signal) => {
      this.#workers.delete(worker);
      markFailed(new Error(`${this.spec.name} exited before it was ready (${signal ?? `code ${code}`})`));
      this.#finish(worker, {
        ok: false,
        error: {
          name: 'RuntimeExitError',
          message: `the function process exited (${signal ?? `code ${code}`})`,
        },
      });
      // A waiter may now spawn a replacement.
      this.#waiting.shift()?.();
    });
    return worker;
  }
}
