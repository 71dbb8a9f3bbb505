import { GetEmailIdentityCommand, type SESv2Client } from '@aws-sdk/client-sesv2';
import type { SesView } from '../domain/doctor/checks.ts';
import { PermanentError, TransientError } from '../shared/errors.ts';

/**
 * What SES says about a sending identity, for the domain doctor (GetEmailIdentity: verification,
 * DKIM status and tokens, MAIL FROM). An identity SES does not have is an answer ("unavailable"),
 * not an error; a refusal is a {@link PermanentError}, anything else a {@link TransientError}.
 */
export async function readSesIdentity(client: SESv2Client, identity: string): Promise<SesView> {
  try {
    const answer = await client.send(new GetEmailIdentityCommand({ EmailIdentity: identity }));
    return {
      kind: 'found',
      facts: {
        identity,
        verifiedForSending: answer.VerifiedForSendingStatus === true,
        dkimStatus: answer.DkimAttributes?.Status ?? 'NOT_STARTED',
        dkimSigningEnabled: answer.DkimAttributes?.SigningEnabled === true,
        dkimTokens: answer.DkimAttributes?.Tokens ?? [],
        mailFromDomain: answer.MailFromAttributes?.MailFromDomain || undefined,
      },
    };
  } catch (error) {
    if ((error as Error).name === 'NotFoundException') {
      return { kind: 'unavailable', reason: `SES has no identity ${identity} in this region` };
    }
    if ((error as Error).name === 'AccessDeniedException') {
      throw new PermanentError(`ses:GetEmailIdentity on ${identity} is not allowed`, { cause: error });
    }
    throw new TransientError(`GetEmailIdentity ${identity} failed: ${(error as Error).name}`, {
      cause: error,
    });
  }
}
