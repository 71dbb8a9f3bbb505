import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateTopicCommand, PublishCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynamo } from '../../local/emulators/dynamodb.ts';
import { LocalPortEnvVar, PortInUseError } from '../../local/emulators/errors.ts';
import type { LocalEmulator } from '../../local/emulators/listen.ts';
import { startSqsSns } from '../../local/emulators/sqs-sns.ts';

const region = 'us-east-1';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

/** Resolves to ECONNREFUSED (or another error code) / 'connected' for a TCP connection attempt. */
const tryConnect = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });

/** An IPv4 address of this machine other than loopback, if it has one. */
const externalIPv4 = (): string | undefined =>
  Object.values(networkInterfaces())
    .flat()
    .find((info) => info !== undefined && info.family === 'IPv4' && !info.internal)?.address;

/** Holds a port on 127.0.0.1 the way a forgotten process would. */
const occupyPort = async (): Promise<{ port: number; release(): Promise<void> }> => {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

describe('DynamoDB emulator (dynalite)', () => {
  let dynamo: LocalEmulator;
  let client: DynamoDBClient;

  beforeAll(async () => {
    dynamo = await startDynamo();
    client = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials });
  });

  afterAll(async () => {
    client.destroy();
    await dynamo.stop();
  });

  it('listens on 127.0.0.1 only', () => {
    expect(dynamo.host).toBe('127.0.0.1');
    expect(dynamo.endpoint).toBe(`http://127.0.0.1:${dynamo.port}`);
  });

  it('creates a table that is active at once, stores an item and refuses a conditional write on an existing key', async () => {
    // Prepare
    await client.send(
      new CreateTableCommand({
        TableName: 'Messages',
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      }),
    );
    const claim = new PutItemCommand({
      TableName: 'Messages',
      Item: { id: { S: 'msg_1' }, status: { S: 'sending' } },
      ConditionExpression: 'attribute_not_exists(id)',
    });

    // Act
    const described = await client.send(new DescribeTableCommand({ TableName: 'Messages' }));
    await client.send(claim);
    const second = await client.send(claim).catch((error: unknown) => error);

    // Assess
    expect(described.Table?.TableStatus).toBe('ACTIVE');
    expect(second).toBeInstanceOf(ConditionalCheckFailedException);
    const stored = await client.send(
      new GetItemCommand({ TableName: 'Messages', Key: { id: { S: 'msg_1' } } }),
    );
    expect(stored.Item?.status).toEqual({ S: 'sending' });
  });

  it('reports a taken port as PortInUseError naming the port and the variable to change', async () => {
    // Prepare
    const holder = await occupyPort();

    // Act
    const start = startDynamo({ port: holder.port });

    // Assess
    await expect(start).rejects.toBeInstanceOf(PortInUseError);
    await expect(start).rejects.toThrow(
      `DynamoDB emulator (dynalite) cannot listen on 127.0.0.1:${holder.port}: the port is already in use`,
    );
    await expect(start).rejects.toThrow(`${LocalPortEnvVar.dynamodb}=<port>`);
    await holder.release();
  });
});

describe('SQS/SNS emulator (fauxqs)', () => {
  let fauxqs: LocalEmulator;
  let sqs: SQSClient;
  let sns: SNSClient;

  beforeAll(async () => {
    fauxqs = await startSqsSns({ region });
    // Queue URLs name `sqs.<region>.localhost`, which the resolver may not know: send to `endpoint`.
    sqs = new SQSClient({ endpoint: fauxqs.endpoint, region, credentials, useQueueUrlAsEndpoint: false });
    sns = new SNSClient({ endpoint: fauxqs.endpoint, region, credentials });
  });

  afterAll(async () => {
    sqs.destroy();
    sns.destroy();
    await fauxqs.stop();
  });

  const createQueue = async (name: string, attributes?: Record<string, string>) => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!QueueUrl) throw new Error('no queue url');
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const arn = Attributes?.QueueArn;
    if (!arn) throw new Error('no queue arn');
    return { url: QueueUrl, arn };
  };

  const receiveOne = async (
    queueUrl: string,
    visibilityTimeout?: number,
    waitSeconds = 1,
  ): Promise<Message | undefined> => {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 1,
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: visibilityTimeout,
      }),
    );
    return Messages?.[0];
  };

  it('listens on 127.0.0.1 only, not on the machine\u2019s other addresses', async () => {
    // Prepare
    const external = externalIPv4();

    // Act
    const externalAttempt = external === undefined ? 'ECONNREFUSED' : await tryConnect(external, fauxqs.port);

    // Assess
    expect(fauxqs.host).toBe('127.0.0.1');
    expect(await tryConnect('127.0.0.1', fauxqs.port)).toBe('connected');
    expect(externalAttempt).toBe('ECONNREFUSED');
  });

  it('fans an SNS message out to SQS as the bare message when raw delivery is on', async () => {
    // Prepare
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'raw-on' }));
    const queue = await createQueue('raw-on-feedback');
    await sns.send(
      new SubscribeCommand({
        TopicArn,
        Protocol: 'sqs',
        Endpoint: queue.arn,
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );

    // Act
    await sns.send(new PublishCommand({ TopicArn, Message: '{"eventType":"Send"}' }));

    // Assess
    const message = await receiveOne(queue.url);
    expect(message?.Body).toBe('{"eventType":"Send"}');
  });

  it('fans an SNS message out to SQS inside the SNS envelope when raw delivery is off', async () => {
    // Prepare
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'raw-off' }));
    const queue = await createQueue('raw-off-feedback');
    await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: queue.arn }));

    // Act
    await sns.send(new PublishCommand({ TopicArn, Message: '{"eventType":"Send"}' }));

    // Assess
    const message = await receiveOne(queue.url);
    const envelope = JSON.parse(message?.Body ?? '{}') as Record<string, unknown>;
    expect(envelope).toMatchObject({ Type: 'Notification', TopicArn, Message: '{"eventType":"Send"}' });
  });

  it('moves a message to the dead-letter queue once it was received maxReceiveCount times', async () => {
    // Prepare
    const dlq = await createQueue('lane-dlq');
    const queue = await createQueue('lane', {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }),
    });
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'poison' }));

    // Act: two failed attempts (visibility 0 = the consumer gave the message back at once), then a third look.
    const first = await receiveOne(queue.url, 0);
    const second = await receiveOne(queue.url, 0);
    const third = await receiveOne(queue.url, 0, 0);

    // Assess
    expect([first?.Body, second?.Body, third]).toEqual(['poison', 'poison', undefined]);
    const dead = await receiveOne(dlq.url);
    expect(dead?.Body).toBe('poison');
  });

  it('reports a taken port as PortInUseError naming the port and the variable to change', async () => {
    // Prepare
    const holder = await occupyPort();

    // Act
    const start = startSqsSns({ port: holder.port });

    // Assess
    await expect(start).rejects.toBeInstanceOf(PortInUseError);
    await expect(start).rejects.toThrow(`127.0.0.1:${holder.port}`);
    await expect(start).rejects.toThrow(`${LocalPortEnvVar.sqsSns}=<port>`);
    await holder.release();
  });
});
