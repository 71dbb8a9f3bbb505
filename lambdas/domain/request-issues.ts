import type * as z from 'zod/mini';
import type { FieldError } from './problem.ts';

/**
 * A zod parse's issues as the api's field errors (DESIGN §2 paths, `to[0]`, `envelope.from`): one
 * per unknown key (named by `unknownMessage`) and one per other issue, with the schema's message.
 * Apart, so a request keeps its order of errors: unknown keys first or last, as it always did. A
 * path and message met twice (a huge number is neither safe nor in range) is reported once.
 */
export function issueErrors(
  issues: readonly z.core.$ZodIssue[],
  unknownMessage: string,
): { readonly unknown: FieldError[]; readonly fields: FieldError[] } {
  const unknown: FieldError[] = [];
  const fields: FieldError[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        unknown.push({ path: pathOf([...issue.path, key]), message: unknownMessage });
    } else {
      const path = pathOf(issue.path);
      if (!fields.some((e) => e.path === path && e.message === issue.message)) {
        fields.push({ path, message: issue.message });
      }
    }
  }
  return { unknown, fields };
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, part) =>
      typeof part === 'number' ? `${out}[${part}]` : out === '' ? String(part) : `${out}.${String(part)}`,
    '',
  );
}
