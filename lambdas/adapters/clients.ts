import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Factories for the SDK clients: each handler creates the ones it needs once, at module scope,
 * so a warm Lambda reuses connections. Endpoints and credentials come from the standard AWS
 * environment (local mode sets AWS_ENDPOINT_URL_<SERVICE> to its emulators).
 */
export function createDocumentClient(
  client: DynamoDBClient = new DynamoDBClient({}),
): DynamoDBDocumentClient {
  // Every writer of Baton's tables (functions, keys CLI, local mode, tests) marshals the same way.
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}
