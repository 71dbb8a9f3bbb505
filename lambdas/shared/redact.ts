/**
 * Every address in a text masked (`ana.lima@example.org` → `a***@example.org`): enough to tell
 * domains apart in logs, not to identify anyone. For error texts before they are logged: SES and
 * remote servers quote the address they refused.
 */
export function redactAddresses(text: string): string {
  return text.replace(/([^\s<>"'(),;:@[\]]+)@([A-Za-z0-9.-]+)/g, (_m, local: string, domain: string) => {
    return `${local.slice(0, 1)}***@${domain}`;
  });
}
