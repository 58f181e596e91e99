import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pngDeclaring, solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import {
  type ReceivedRequest,
  type Receiver,
  startReceiver,
  verifiesWith,
  waitUntil,
} from '../helpers/webhook-receiver.ts';

// The whole path as `clipmod serve` composes it (api + inference + webhooks in one process): an image
// submitted through the API becomes one signed event at a loopback receiver.

let service: ServiceHarness;
let receiver: Receiver;
let secret = '';
let endpointId = '';
let red: Uint8Array;

type EventBody = {
  type: string;
  timestamp: string;
  data: { id: string; status: string; error?: { code: string } };
};
const bodyOf = (request: ReceivedRequest) => JSON.parse(request.body.toString('utf8')) as EventBody;
const eventsFor = (moderationId: string) =>
  receiver.requests.filter((request) => bodyOf(request).data.id === moderationId);

beforeAll(async () => {
  receiver = await startReceiver();
  service = await startService({
    roles: ['api', 'inference', 'webhooks'],
    env: {
      MODEL_DIR: await builtModel('color'),
      CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      CLIPMOD_MAX_BATCH_SIZE: '4',
      CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: Array(10).fill('200').join(','),
      CLIPMOD_WEBHOOK_TIMEOUT_MS: '2000',
    },
  });
  red = await solidImage('png', 64, 48, [230, 20, 20]);
  const policy = await service.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image'],
    }),
  });
  expect(policy.status).toBe(201);
  const created = await service.request('/v1/webhook-endpoints', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url('/hooks') }),
  });
  expect(created.status).toBe(201);
  ({ id: endpointId, secret } = (await created.json()) as { id: string; secret: string });
});

afterAll(async () => {
  await service?.stop();
  await receiver?.stop();
});

async function submit(image: Uint8Array): Promise<{ id: string; status: string }> {
  const response = await service.request('/v1/moderations', {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: image,
  });
  expect([200, 202]).toContain(response.status);
  return (await response.json()) as { id: string; status: string };
}

async function deliveriesOf(moderationId: string) {
  const response = await service.request(`/v1/webhook-endpoints/${endpointId}/deliveries`);
  const { data } = (await response.json()) as {
    data: { moderationId: string; eventId: string; status: string; attempts: { errorClass?: string }[] }[];
  };
  return data.filter((delivery) => delivery.moderationId === moderationId);
}

describe('webhooks end to end', () => {
  it('delivers exactly one verifiable moderation.completed event for an image submitted through the API', async () => {
    const { id } = await submit(red);
    const [request] = await waitUntil('the webhook', () => eventsFor(id).length > 0 && eventsFor(id), 20_000);
    expect(verifiesWith(secret, request!)).toBe(true);
    const event = bodyOf(request!);
    const moderation = await (await service.request(`/v1/moderations/${id}`)).json();
    expect(event.type).toBe('moderation.completed');
    expect(event.data).toEqual(moderation);
    expect(event.data.status).toBe('completed');
    expect(request!.headers['webhook-id']).toMatch(/^msg_[A-Za-z0-9_-]{24}$/);

    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(eventsFor(id)).toHaveLength(1);
    const [delivery] = await deliveriesOf(id);
    expect(delivery).toMatchObject({ status: 'delivered', eventId: request!.headers['webhook-id'] });
    expect(delivery!.attempts).toHaveLength(1);
  });

  it('gets the event to a receiver that was down, once it is back, with the same webhook-id', async () => {
    await receiver.stop();
    const { id } = await submit(red);
    const [failing] = await waitUntil(
      'two failed attempts',
      async () => {
        const found = await deliveriesOf(id);
        return (found[0]?.attempts.length ?? 0) >= 2 && found;
      },
      20_000,
    );
    expect(failing!.attempts.every((attempt) => attempt.errorClass === 'network')).toBe(true);
    await receiver.restart();
    const [request] = await waitUntil(
      'the late webhook',
      () => eventsFor(id).length > 0 && eventsFor(id),
      10_000,
    );
    expect(request!.headers['webhook-id']).toBe(failing!.eventId);
    expect(verifiesWith(secret, request!)).toBe(true);
    expect(bodyOf(request!).type).toBe('moderation.completed');
    await waitUntil('the delivered status', async () => (await deliveriesOf(id))[0]?.status === 'delivered');
    expect(eventsFor(id)).toHaveLength(1);
  });

  it('sends moderation.failed for an image that passes intake but cannot be decoded', async () => {
    const { id } = await submit(pngDeclaring(64, 48));
    const [request] = await waitUntil(
      'the failure webhook',
      () => eventsFor(id).length > 0 && eventsFor(id),
      20_000,
    );
    const event = bodyOf(request!);
    expect(verifiesWith(secret, request!)).toBe(true);
    expect(event.type).toBe('moderation.failed');
    expect(event.data.status).toBe('failed');
    expect(event.data.error?.code).toBe('corrupt_image');
  });
});
