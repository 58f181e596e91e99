import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import {
  type ReceivedRequest,
  type Receiver,
  startReceiver,
  waitUntil,
} from '../helpers/webhook-receiver.ts';

// Retained embeddings on the `color` model, whose verdicts mean something: text search finds the red
// images, a new live policy version re-scores them without the images and sends `moderation.rescored`
// for the verdicts that changed, and calibration proposes thresholds from labelled examples.

const redPolicy = (threshold: number) => ({
  labels: [{ id: 'red', prompts: ['a red image'], threshold, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image'],
});

let service: ServiceHarness;
let receiver: Receiver;
const ids: Record<string, string> = {};

function send(path: string, method: string, body: unknown) {
  return service.request(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function moderate(image: Uint8Array): Promise<{ id: string; verdict: { action: string } }> {
  const body = new FormData();
  body.append('image', new Blob([image]), 'image.png');
  const response = await service.request('/v1/moderations?wait=20000', { method: 'POST', body });
  expect(response.status).toBe(200);
  return (await response.json()) as { id: string; verdict: { action: string } };
}

const rescoredEvents = () =>
  receiver.requests
    .map((request: ReceivedRequest) => JSON.parse(request.body.toString('utf8')))
    .filter((event) => event.type === 'moderation.rescored');

beforeAll(async () => {
  receiver = await startReceiver();
  service = await startService({
    roles: ['api', 'inference', 'webhooks'],
    env: { MODEL_DIR: await builtModel('color'), CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' },
  });
  expect((await send('/v1/policies/default', 'PUT', redPolicy(0.5))).status).toBe(201);
  expect(
    (await send('/v1/tenant-settings', 'PUT', { retention: { enabled: true, ttlSeconds: 600 } })).status,
  ).toBe(200);
  const endpoint = await send('/v1/webhook-endpoints', 'POST', {
    url: receiver.url('/hooks'),
    eventTypes: ['moderation.rescored'],
  });
  expect(endpoint.status).toBe(201);
  ids.red = (await moderate(await solidImage('png', 64, 48, [230, 20, 20]))).id;
  // Orange sits between red and yellow: its red score lands between the two thresholds used below.
  ids.orange = (await moderate(await solidImage('png', 64, 48, [240, 120, 20]))).id;
  ids.green = (await moderate(await solidImage('png', 64, 48, [20, 200, 30]))).id;
});

afterAll(async () => {
  await service?.stop();
  await receiver?.stop();
});

describe('retention and text search', () => {
  it('reads back the tenant settings it stored, with defaults filled in', async () => {
    const settings = await (await service.request('/v1/tenant-settings')).json();
    expect(settings).toEqual({
      retention: { enabled: true, ttlSeconds: 600 },
      bank: { maxCosineDistance: 0.1 },
    });
    expect((await send('/v1/tenant-settings', 'PUT', { retention: { enabled: 'yes' } })).status).toBe(400);
  });

  it('finds the red image first for "a red image", with moderation id and verdict', async () => {
    const response = await service.request(`/v1/search?q=${encodeURIComponent('a red image')}&k=2`);
    expect(response.status).toBe(200);
    const { data } = (await response.json()) as {
      data: { moderationId: string; score: number; verdict: any }[];
    };
    expect(data).toHaveLength(2);
    expect(data[0]).toMatchObject({
      moderationId: ids.red,
      verdict: { action: 'block', triggered: ['red'] },
    });
    expect(data[0]!.score).toBeGreaterThan(data[1]!.score);
    expect(data.map((hit) => hit.moderationId)).not.toContain(ids.green);
  });

  it('stores the embedding, never the image', async () => {
    const vectors = await service.redis.hgetallBuffer(`${service.prefix}:retained:default:vectors`);
    expect(Object.keys(vectors).sort()).toEqual([ids.red, ids.orange, ids.green].sort());
    for (const bytes of Object.values(vectors)) expect(bytes.length).toBe(11 * 4);
    expect(await service.redis.keys(`${service.prefix}:image:*`)).toEqual([]);
  });
});

describe('re-scoring on a new live policy version', () => {
  it('sends moderation.rescored with old and new verdicts for the verdicts that changed', async () => {
    const before = (await (await service.request(`/v1/moderations/${ids.orange}`)).json()) as Record<
      string,
      any
    >;
    const orangeScore: number = before.verdict.labels[0].score;
    // Just above orange's score: orange stops triggering, red (p > 0.9) keeps triggering.
    const threshold = Math.min(0.9, orangeScore + 0.01);
    expect(orangeScore).toBeLessThan(0.9);
    expect(before.verdict.action).toBe('block');
    expect((await send('/v1/policies/default', 'PUT', redPolicy(threshold))).status).toBe(200);
    const [event] = await waitUntil(
      'a moderation.rescored event',
      () => rescoredEvents().length > 0 && rescoredEvents(),
    );
    expect(event.data).toMatchObject({
      moderationId: ids.orange,
      policy: { id: 'default', previousVersion: 1, version: 2 },
      previous: { action: 'block', triggered: ['red'] },
      current: { action: 'allow', triggered: [] },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(rescoredEvents()).toHaveLength(1);
  });
});

describe('calibration', () => {
  it('proposes, per label, the lowest threshold that reaches the target precision', async () => {
    const example = async (label: string, rgb: [number, number, number]) => ({
      label,
      image: { base64: Buffer.from(await solidImage('png', 32, 32, rgb)).toString('base64') },
    });
    const examples = await Promise.all([
      example('red', [230, 20, 20]),
      example('red', [200, 30, 40]),
      example('negatives', [20, 200, 30]),
      example('negatives', [30, 30, 220]),
    ]);
    const response = await send('/v1/policies/default/calibrate', 'POST', { targetPrecision: 1, examples });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, any>;
    const [red] = body.labels;
    expect(red).toMatchObject({ label: 'red', positives: 2, negatives: 2 });
    expect(red.proposed.precision).toBe(1);
    expect(red.proposed.recall).toBe(1);
    expect(red.curve.at(-1)).toMatchObject({ recall: 1, precision: 0.5 });
    expect(body.policy).toEqual({ id: 'default', version: 2 });
  });

  it('refuses examples filed under an unknown label', async () => {
    const image = { base64: Buffer.from(await solidImage('png', 8, 8, [1, 2, 3])).toString('base64') };
    const response = await send('/v1/policies/default/calibrate', 'POST', {
      examples: [{ label: 'blue', image }],
    });
    expect(response.status).toBe(400);
  });
});
