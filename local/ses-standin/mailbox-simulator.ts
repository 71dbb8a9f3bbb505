/**
 * What happens to each recipient after SES accepts a message, modelled on the SES mailbox simulator
 * (https://docs.aws.amazon.com/ses/latest/dg/send-an-email-from-console.html#send-email-simulator).
 * Pure data: the server turns the steps into events, so the rules can be read and tested alone.
 * The literals come from real simulator captures in test/fixtures/shared/ses/ (a copy of the team fixtures).
 */

export const SIMULATOR_DOMAIN = 'simulator.amazonses.com';

export type SimulatorMailbox = 'success' | 'bounce' | 'complaint' | 'ooto' | 'suppressionlist';

export interface BounceOutcome {
  readonly kind: 'bounce';
  readonly bounceType: 'Permanent' | 'Transient';
  readonly bounceSubType: 'General' | 'OnAccountSuppressionList';
  /** Per-recipient DSN fields; absent for the simulator's out-of-office bounce, as in the capture. */
  readonly dsn?: { readonly action: string; readonly status: string; readonly diagnosticCode: string };
  /** `remote`: an MTA answered (reportingMTA + remoteMtaIp); `ses`: SES itself refused; `none`: neither. */
  readonly reportedBy: 'remote' | 'ses' | 'none';
}

export type RecipientStep =
  | { readonly kind: 'delivery' }
  | BounceOutcome
  | { readonly kind: 'complaint'; readonly feedbackType: 'abuse' }
  | { readonly kind: 'deliveryDelay' };

const HARD_BOUNCE: BounceOutcome = {
  kind: 'bounce',
  bounceType: 'Permanent',
  bounceSubType: 'General',
  dsn: { action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
  reportedBy: 'remote',
};

// SES answers this one itself without contacting a mail server (the real capture of an address on the
// account suppression list has reportingMTA "dns; amazonses.com" and no remoteMtaIp).
const ACCOUNT_SUPPRESSED: BounceOutcome = {
  kind: 'bounce',
  bounceType: 'Permanent',
  bounceSubType: 'OnAccountSuppressionList',
  dsn: {
    action: 'failed',
    status: '5.1.1',
    diagnosticCode:
      'Amazon SES did not send the message to this address because it is on the suppression list for ' +
      'your account. For more information about removing addresses from the suppression list, see the ' +
      'Amazon SES Developer Guide at ' +
      'https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html',
  },
  reportedBy: 'ses',
};

const OUT_OF_OFFICE: BounceOutcome = {
  kind: 'bounce',
  bounceType: 'Transient',
  bounceSubType: 'General',
  reportedBy: 'none',
};

const DELIVERY = { kind: 'delivery' } as const;

/**
 * The simulator mailbox an address names, matching like SES: the domain and the local part are
 * compared case-insensitively, and a `+label` is ignored (`Bounce+order42@Simulator.AmazonSES.com`).
 */
export const simulatorMailbox = (address: string): SimulatorMailbox | undefined => {
  const at = address.lastIndexOf('@');
  if (at < 0 || address.slice(at + 1).toLowerCase() !== SIMULATOR_DOMAIN) return undefined;
  const local = address.slice(0, at).toLowerCase();
  const plus = local.indexOf('+');
  const mailbox = plus >= 0 ? local.slice(0, plus) : local;
  return isSimulatorMailbox(mailbox) ? mailbox : undefined;
};

const isSimulatorMailbox = (value: string): value is SimulatorMailbox =>
  value === 'success' ||
  value === 'bounce' ||
  value === 'complaint' ||
  value === 'ooto' ||
  value === 'suppressionlist';

/**
 * The ordered steps one recipient goes through. Any address outside the simulator is delivered (to
 * the local outbox). `delayFirst` (fault injection) puts a DeliveryDelay before a delivery.
 */
export const recipientSteps = (address: string, options: { delayFirst?: boolean } = {}): RecipientStep[] => {
  const steps = stepsFor(simulatorMailbox(address));
  const firstDelivery = steps.findIndex((step) => step.kind === 'delivery');
  if (options.delayFirst && firstDelivery >= 0) {
    return [...steps.slice(0, firstDelivery), { kind: 'deliveryDelay' }, ...steps.slice(firstDelivery)];
  }
  return steps;
};

const stepsFor = (mailbox: SimulatorMailbox | undefined): RecipientStep[] => {
  switch (mailbox) {
    case 'bounce':
      return [HARD_BOUNCE];
    case 'complaint':
      return [DELIVERY, { kind: 'complaint', feedbackType: 'abuse' }];
    case 'ooto':
      return [OUT_OF_OFFICE, DELIVERY];
    case 'suppressionlist':
      return [ACCOUNT_SUPPRESSED];
    default:
      return [DELIVERY];
  }
};

/** Whether a recipient ends up with the message in their mailbox (and so the outbox gets a copy). */
export const isDelivered = (steps: readonly RecipientStep[]): boolean =>
  steps.some((step) => step.kind === 'delivery');

export interface EventGroup {
  readonly step: RecipientStep;
  readonly recipients: readonly string[];
}

/**
 * Orders the recipients' steps into phases and, within a phase, groups recipients whose step is the
 * same outcome into one event, as SES does (one Delivery listing several recipients, one Bounce per
 * bounce type). Phase n holds every recipient's n-th step, so each recipient's own order is kept
 * (complaint: Delivery then Complaint; ooto: Bounce then Delivery).
 */
export const planEventPhases = (
  plans: ReadonlyArray<{ readonly recipient: string; readonly steps: readonly RecipientStep[] }>,
): EventGroup[][] => {
  const phaseCount = Math.max(0, ...plans.map((plan) => plan.steps.length));
  const phases: EventGroup[][] = [];
  for (let phase = 0; phase < phaseCount; phase++) {
    const groups = new Map<string, { step: RecipientStep; recipients: string[] }>();
    for (const { recipient, steps } of plans) {
      const step = steps[phase];
      if (!step) continue;
      const key = groupKey(step);
      const group = groups.get(key);
      if (group) group.recipients.push(recipient);
      else groups.set(key, { step, recipients: [recipient] });
    }
    phases.push([...groups.values()]);
  }
  return phases;
};

const groupKey = (step: RecipientStep): string =>
  step.kind === 'bounce' ? `bounce:${step.bounceType}:${step.bounceSubType}` : step.kind;
