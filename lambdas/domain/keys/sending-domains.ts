import { domainAllowed } from '../address.ts';

/**
 * Which From domains a deployment can send from. SES authorises a send against a verified
 * identity, and a verified domain also covers its subdomains, so a domain is covered when it is one
 * of the deployment's identities or a subdomain of one. A key that names any other domain would be
 * answered 202 and then fail at SES with AccessDenied, so keys are refused such domains up front.
 */
export function uncoveredDomains(domains: readonly string[], identities: readonly string[]): string[] {
  return domains.filter((domain) => !domainAllowed(domain, identities));
}

/** A key names domains the deployment has no SES identity for; the message names the covered ones. */
export class UncoveredDomainError extends Error {
  override readonly name = 'UncoveredDomainError';
  readonly uncovered: readonly string[];
  readonly identities: readonly string[];

  /**
   * @param where the deployment, e.g. "stack Baton (eu-west-1)"
   * @param howToAdd how a domain is added to it, e.g. "npx cdk deploy -c domains=..."
   */
  constructor(uncovered: readonly string[], identities: readonly string[], where: string, howToAdd: string) {
    super(
      `${uncovered.join(', ')} ${uncovered.length === 1 ? 'is' : 'are'} not covered by ${where}, which sends from ` +
        `${identities.join(', ')} (and their subdomains) only. Use one of those, or add the domain first (${howToAdd}).`,
    );
    this.uncovered = uncovered;
    this.identities = identities;
  }
}
