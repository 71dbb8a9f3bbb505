import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Factories for the SDK clients: each handler creates the ones it needs once, at module scope,
 * so a warm Lambda reuses connections. Endpoints and credentials come from the standard AWS
 * environment (local mode sets AWS_ENDPOINT_URL_<SERVICE> to its emulators).
 */
export function createDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}
