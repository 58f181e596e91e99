import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// Exclude prompts and the dry run end to end on the built `color` model: API → queue → worker → verdict.
// The analogy to "weapons" with the exclude "a toy gun": a "warm colours" label (red, yellow) fires on
// an orange image (orange sits next to yellow), unless its exclude "an orange image" matches better.

const warm = { id: 'warm', prompts: ['a red image', 'a yellow image'], threshold: 0.5, action: 'block' };
const baseline = ['a green image', 'a blue image', 'a black image', 'a white image'];
const withoutExclude = { labels: [warm], baseline };
const withExclude = { labels: [{ ...warm, exclude: ['an orange image'] }], baseline };

let service: ServiceHarness;
let orange: Uint8Array;
let red: Uint8Array;

beforeAll(async () => {
  service = await startService({ env: { MODEL_DIR: await builtModel('color') } });
  orange = await solidImage('png', 48, 48, [255, 153, 0]);
  red = await solidImage('png', 48, 48, [230, 20, 20]);
  for (const policy of [withoutExclude, withExclude]) {
    const put = await service.request('/v1/policies/colors', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(policy),
    });
    expect(put.ok).toBe(true);
  }
});

afterAll(async () => {
  await service?.stop();
});

function form(image: Uint8Array, fields: Record<string, string> = {}): FormData {
  const body = new FormData();
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  body.append('image', new Blob([image]), 'image.png');
  return body;
}

async function post(path: string, init: RequestInit) {
  const response = await service.request(path, { method: 'POST', ...init });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

const countKeys = async (pattern: string) =>
  (await service.redis.keys(`${service.prefix}:${pattern}`)).length;

describe('exclude prompts (end to end)', () => {
  it('suppresses a label whose exclude matches the image better, reporting score and exclude', async () => {
    const { body } = await post('/v1/moderations?wait=20000', { body: form(orange, { policy: 'colors' }) });
    expect(body.policy).toEqual({ id: 'colors', version: 2 });
    expect(body.verdict.action).toBe('allow');
    expect(body.verdict.labels[0]).toMatchObject({
      id: 'warm',
      triggered: false,
      evidence: { prompt: 'a yellow image', suppressedBy: 'an orange image' },
    });
    expect(body.verdict.labels[0].score).toBeGreaterThan(0.5);
  });

  it('still triggers the label on what it names: a red image', async () => {
    const { body } = await post('/v1/moderations?wait=20000', { body: form(red, { policy: 'colors' }) });
    expect(body.verdict.action).toBe('block');
    expect(body.verdict.labels[0].evidence).toEqual({ prompt: 'a red image' });
  });
});

describe('dry run: POST /v1/policies/:id/test', () => {
  it('scores an image against the live version and records nothing', async () => {
    const [moderations, images] = [await countKeys('moderation:*'), await countKeys('image:*')];
    const { status, body } = await post('/v1/policies/colors/test', { body: form(orange) });
    expect(status).toBe(200);
    expect(body.policy).toEqual({ id: 'colors', version: 2 });
    expect(body.model).toContain('color');
    expect(body.verdict.labels[0]).toMatchObject({
      triggered: false,
      evidence: { suppressedBy: 'an orange image' },
    });
    expect(await countKeys('moderation:*')).toBe(moderations);
    expect(await countKeys('image:*')).toBe(images);
  });

  it('scores against an older stored version with ?version=N', async () => {
    const { body } = await post('/v1/policies/colors/test?version=1', { body: form(orange) });
    expect(body.policy).toEqual({ id: 'colors', version: 1 });
    expect(body.verdict.action).toBe('block');
    expect(body.verdict.labels[0]).toMatchObject({ triggered: true, evidence: { prompt: 'a yellow image' } });
  });

  it('scores against an unsaved draft sent in a JSON body, leaving the versions alone', async () => {
    const draft = { labels: [{ ...warm, action: 'review' }], baseline };
    const { body } = await post('/v1/policies/colors/test', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: { base64: Buffer.from(red).toString('base64') }, policy: draft }),
    });
    expect(body.policy).toEqual({ id: 'colors', draft: true });
    expect(body.verdict.action).toBe('review');
    const versions = (await (await service.request('/v1/policies/colors/versions')).json()) as any;
    expect(versions.data).toHaveLength(2);
  });

  it('takes a draft as a multipart field too, and may name a policy that does not exist yet', async () => {
    const draft = JSON.stringify({ labels: [{ ...warm, id: 'reds', prompts: ['a red image'] }], baseline });
    const { status, body } = await post('/v1/policies/brand-new/test', {
      body: form(red, { policy: draft }),
    });
    expect(status).toBe(200);
    expect(body.verdict.labels.map((label: any) => [label.id, label.triggered])).toEqual([['reds', true]]);
  });

  it('points validation errors into the draft and refuses unknown versions', async () => {
    const draft = JSON.stringify({ labels: [{ ...warm, threshold: 2 }], baseline });
    const invalid = await post('/v1/policies/colors/test', { body: form(red, { policy: draft }) });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors).toEqual([
      { path: 'policy.labels[0].threshold', message: expect.any(String) },
    ]);
    expect((await post('/v1/policies/colors/test?version=9', { body: form(red) })).status).toBe(404);
    expect((await post('/v1/policies/nothing/test', { body: form(red) })).status).toBe(404);
    const both = await post('/v1/policies/colors/test?version=1', { body: form(red, { policy: draft }) });
    expect(both.status).toBe(400);
    expect((await post('/v1/policies/colors/test', { body: form(new Uint8Array(0)) })).status).toBe(400);
  });

  it('needs the admin scope', async () => {
    const created = await service.request('/v1/api-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'uploader', scopes: ['moderate'] }),
    });
    const { key } = (await created.json()) as { key: string };
    const answer = await post('/v1/policies/colors/test', {
      headers: { authorization: `Bearer ${key}` },
      body: form(red),
    });
    expect(answer.status).toBe(403);
  });
});
