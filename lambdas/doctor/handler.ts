import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import middy from '@middy/core';
import type { ScheduledEvent } from 'aws-lambda';
import { createDocumentClient } from '../adapters/clients.ts';
import { DynamoBaselineStore } from '../adapters/doctor-baseline-store.ts';
import { NodeDns } from '../adapters/node-dns.ts';
import { readSesIdentity } from '../adapters/ses-identity.ts';
import { requiredEnv } from '../shared/env.ts';
import { EnvVar } from '../shared/names.ts';
import { logger, publishMetrics } from '../shared/observability.ts';
import { createScheduledDoctor } from './app.ts';

const ses = new SESv2Client({});
const run = createScheduledDoctor(
  {
    dns: new NodeDns(),
    readIdentity: (domain) => readSesIdentity(ses, domain),
    baseline: new DynamoBaselineStore(createDocumentClient(), requiredEnv(EnvVar.guardTable)),
    region: await ses.config.region(),
  },
  requiredEnv(EnvVar.doctorDomains)
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== ''),
);

export const handler = middy<ScheduledEvent, void>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(publishMetrics())
  .handler(async () => {
    await run();
  });
