import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// Shadow mode end to end on the built `color` model: the live policy blocks red; the candidate also
// blocks green. Live traffic gets the live verdicts; each record carries the candidate's verdict; the
// summary counts agreement and the label that flipped.

const baseline = ['a blue image', 'a yellow image', 'a black image', 'a white image'];
const red = { id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' };
const green = { id: 'green', prompts: ['a green image'], threshold: 0.5, action: 'block' };
const live = { labels: [red], baseline: [...baseline, 'a green image'] };
const candidate = { labels: [red, green], baseline };

let service: ServiceHarness;
let redImage: Uint8Array;
let greenImage: Uint8Array;

beforeAll(async () => {
  service = await startService({ env: { MODEL_DIR: await builtModel('color') } });
  redImage = await solidImage('png', 40, 40, [230, 20, 20]);
  greenImage = await solidImage('png', 40, 40, [20, 200, 30]);
  expect((await send('PUT', '/v1/policies/default', live)).status).toBe(201);
});

afterAll(async () => {
  await service?.stop();
});

async function send(method: string, path: string, body?: unknown) {
  const response = await service.request(path, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
}

async function moderate(image: Uint8Array) {
  const response = await service.request('/v1/moderations?wait=20000', {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: image,
  });
  return (await response.json()) as Record<string, any>;
}

describe('shadow mode (end to end)', () => {
  it('acts on the live verdict and records the candidate’s beside it', async () => {
    const set = await send('PUT', '/v1/policies/default/shadow', { policy: candidate });
    expect(set.body).toMatchObject({ liveVersion: 1, shadowVersion: 2 });
    const onGreen = await moderate(greenImage);
    expect(onGreen.policy).toEqual({ id: 'default', version: 1 });
    expect(onGreen.verdict.action).toBe('allow');
    expect(onGreen.verdict.labels.map((label: any) => label.id)).toEqual(['red']);
    expect(onGreen.shadow.version).toBe(2);
    expect(onGreen.shadow.verdict.action).toBe('block');
    expect(onGreen.shadow.verdict.labels[1]).toMatchObject({ id: 'green', triggered: true });
    const onRed = await moderate(redImage);
    expect(onRed.verdict.action).toBe('block');
    expect(onRed.shadow.verdict.action).toBe('block');
  });

  it('summarises agreement, action pairs and flips by label', async () => {
    const { status, body } = await send('GET', '/v1/policies/default/shadow/summary');
    expect(status).toBe(200);
    expect(body).toEqual({
      id: 'default',
      liveVersion: 1,
      isRunning: true,
      shadowVersion: 2,
      count: 2,
      agreed: 1,
      agreementRate: 0.5,
      errors: 0,
      actions: { 'allow->block': 1, 'block->block': 1 },
      flips: { green: { triggered: 1, cleared: 0 } },
    });
  });

  it('stops recording shadow verdicts once the shadow is deleted', async () => {
    expect((await send('DELETE', '/v1/policies/default/shadow')).status).toBe(204);
    const after = await moderate(greenImage);
    expect(after.verdict.action).toBe('allow');
    expect(after.shadow).toBeUndefined();
    const summary = await send('GET', '/v1/policies/default/shadow/summary?version=2');
    expect(summary.body).toMatchObject({ isRunning: false, count: 2 });
  });
});
