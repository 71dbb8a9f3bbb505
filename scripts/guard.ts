/** `npm run guard -- <command>`: the abuse guard's operator commands (docs/guard.md). */
import { createGuard, requiredHeld } from '../lambdas/adapters/guard-wiring.ts';
import { mainGuard } from './guard-target.ts';

const io = {
  out: (text: string) => process.stdout.write(`${text}\n`),
  err: (text: string) => process.stderr.write(`${text}\n`),
};
process.exitCode = await mainGuard(
  process.argv.slice(2),
  process.env,
  (deps) => {
    const { guard, held, state } = createGuard(deps);
    return { guard, held: requiredHeld(held), state };
  },
  io,
);
