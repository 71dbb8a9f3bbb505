// The stand-in's public surface; local mode and tests import from here.
export type { SesBouncedRecipient, SesCommonHeaders, SesEvent, SesEventType, SesMail } from './events.ts';
export { MATCHING_EVENT_TYPE } from './events.ts';
export type { FaultPlan } from './faults.ts';
export type { StandinLogger } from './log.ts';
export { consoleLogger, maskAddresses, streamLogger } from './log.ts';
export type { SimulatorMailbox } from './mailbox-simulator.ts';
export { SIMULATOR_DOMAIN, simulatorMailbox } from './mailbox-simulator.ts';
export type { EmailTag } from './send-email.ts';
export { MAX_RAW_MESSAGE_BYTES, MAX_RECIPIENTS } from './send-email.ts';
export type { SentRecord, SesEventDestination, SesStandin, StartSesStandinOptions } from './server.ts';
export { OUTBOX_ID_TAG, startSesStandin } from './server.ts';
