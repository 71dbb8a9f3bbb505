/**
 * A cold start, as far as Node goes: a fresh process imports one bundle (which builds its clients
 * at module scope, as a handler does) and reports how long the import took, then exits. Started by
 * the bundles section, once per run; the parent times the whole process too.
 * Plain JavaScript on purpose: a .ts entry would load Node's type stripper (~17 MB, and time) into
 * every measurement.
 * Usage: node bench/probe/init-child.mjs <bundle.mjs>
 */
import { pathToFileURL } from 'node:url';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: init-child.mjs <bundle.mjs>');
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const mod = await import(pathToFileURL(file).href);
const importMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
if (typeof mod.handler !== 'function') throw new Error(`${file} exports no handler`);
// performance.now() counts from the process's time origin, so this is start-up plus the import.
process.stdout.write(
  JSON.stringify({
    importMs,
    // CPU of the import, all threads: less sensitive than wall time to a busy machine.
    importCpuMs: (cpu.user + cpu.system) / 1000,
    sinceStartMs: performance.now(),
    rssMb: process.memoryUsage.rss() / 2 ** 20,
  }),
);
