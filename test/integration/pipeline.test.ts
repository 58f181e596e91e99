import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { animation, pngDeclaring, solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// The vertical slice on the built `color` model: API → Redis queue → batching worker → verdict.

const colorPolicy = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
};

let service: ServiceHarness;
let red: Uint8Array;
let green: Uint8Array;
let imageServer: Server;
let imageServerUrl = '';

beforeAll(async () => {
  service = await startService({
    env: {
      MODEL_DIR: await builtModel('color'),
      CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      CLIPMOD_MAX_BATCH_SIZE: '8',
    },
  });
  red = await solidImage('png', 64, 48, [230, 20, 20]);
  green = await solidImage('jpeg', 64, 48, [20, 200, 30]);
  const put = await service.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(colorPolicy),
  });
  expect(put.status).toBe(201);
  imageServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(red));
  await new Promise<void>((resolve) => imageServer.listen(0, '127.0.0.1', resolve));
  imageServerUrl = `http://127.0.0.1:${(imageServer.address() as { port: number }).port}/red.png`;
});

afterAll(async () => {
  imageServer?.close();
  await service?.stop();
});

function multipart(image: Uint8Array, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('image', new Blob([image]), 'upload.bin');
  return form;
}

async function moderate(init: RequestInit, query = '?wait=20000') {
  const response = await service.request(`/v1/moderations${query}`, { method: 'POST', ...init });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

describe('moderation pipeline', () => {
  it('blocks a red image with evidence, through multipart, synchronously', async () => {
    const { status, body } = await moderate({ body: multipart(red, { metadata: '{"upload":"u1"}' }) });
    expect(status).toBe(200);
    expect(body.status).toBe('completed');
    expect(body.verdict.action).toBe('block');
    expect(body.verdict.flagged).toBe(true);
    expect(body.verdict.labels[0]).toMatchObject({
      id: 'red',
      triggered: true,
      threshold: 0.5,
      evidence: { prompt: 'a red image' },
    });
    expect(body.verdict.labels[0].score).toBeGreaterThan(0.9);
    expect(body.policy).toEqual({ id: 'default', version: 1 });
    expect(body.metadata).toEqual({ upload: 'u1' });
    expect(body.model).toContain('color');
    expect(body.tenant).toBeUndefined();
  });

  it('allows a green image sent as a raw body', async () => {
    const { status, body } = await moderate({ headers: { 'content-type': 'image/jpeg' }, body: green });
    expect(status).toBe(200);
    expect(body.verdict.action).toBe('allow');
    expect(body.verdict.labels[0].triggered).toBe(false);
    expect(body.verdict.labels[0].score).toBeLessThan(0.1);
  });

  it('takes base64 JSON and loopback URLs (allow-listed)', async () => {
    const json = (image: object) => ({
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image, policy: 'default' }),
    });
    const viaBase64 = await moderate(json({ base64: Buffer.from(red).toString('base64') }));
    expect(viaBase64.body.verdict.action).toBe('block');
    const viaUrl = await moderate(json({ url: imageServerUrl }));
    expect(viaUrl.body.verdict.action).toBe('block');
  });

  it('answers 202 at once without ?wait, then GET returns the verdict', async () => {
    const { status, body } = await moderate({ headers: { 'content-type': 'image/png' }, body: red }, '');
    expect(status).toBe(202);
    expect(body).toMatchObject({ status: expect.stringMatching(/queued|processing/) });
    const done = await service.request(`/v1/moderations/${body.id}?wait=20000`);
    expect(done.status).toBe(200);
    expect(((await done.json()) as any).verdict.action).toBe('block');
  });

  it('flags an animation whose only red frame is the third', async () => {
    const gif = await animation('gif', [[20, 200, 30], [20, 30, 200], [230, 20, 20], [20, 200, 30]]); // biome-ignore format: one colour per frame
    const { body } = await moderate({ headers: { 'content-type': 'image/gif' }, body: gif });
    expect(body.verdict.action).toBe('block');
    expect(body.verdict.labels[0].evidence.frame).toBe(2);
  });

  it('turns 1,000 concurrent submissions with one Idempotency-Key into one job and one verdict', async () => {
    const key = `upload-${Date.now()}`;
    const countRecords = async () => (await service.redis.keys(`${service.prefix}:moderation:*`)).length;
    const recordsBefore = await countRecords();
    const responses = await Promise.all(
      Array.from({ length: 1000 }, () =>
        service.request('/v1/moderations', {
          method: 'POST',
          headers: { 'content-type': 'image/png', 'idempotency-key': key },
          body: red,
        }),
      ),
    );
    const ids = new Set(
      await Promise.all(responses.map(async (r) => ((await r.json()) as { id: string }).id)),
    );
    expect(responses.every((r) => r.status === 202 || r.status === 200)).toBe(true);
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    const finished = await service.request(`/v1/moderations/${id}?wait=20000`);
    expect(((await finished.json()) as any).verdict.action).toBe('block');
    expect(await countRecords()).toBe(recordsBefore + 1);
  });

  it('hides one tenant’s moderations from another', async () => {
    const { body } = await moderate({ headers: { 'content-type': 'image/png' }, body: red });
    const created = await service.request('/v1/api-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'other', scopes: ['moderate'], tenant: 'other-tenant' }),
    });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    const asOther = await service.request(`/v1/moderations/${body.id}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(asOther.status).toBe(404);
    expect(((await asOther.json()) as { code: string }).code).toBe('not_found');
  });

  it('gives every bad input a typed 4xx and keeps serving', async () => {
    const raw = (body: Uint8Array | string, type = 'image/png') =>
      moderate({ headers: { 'content-type': type }, body });
    const cases = [
      { result: await raw(new Uint8Array(0)), status: 400, code: 'empty_image' },
      {
        result: await raw('<svg xmlns="http://www.w3.org/2000/svg"/>'),
        status: 415,
        code: 'unsupported_format',
      },
      {
        result: await raw(Buffer.from('not an image at all, just text')),
        status: 415,
        code: 'unsupported_format',
      },
      { result: await raw(pngDeclaring(100_000, 100_000)), status: 413, code: 'image_too_large' },
      { result: await raw(red.subarray(0, 40)), status: 400, code: 'corrupt_image' },
      { result: await raw(red, 'text/plain'), status: 415, code: 'unsupported_format' },
    ];
    for (const { result, status, code } of cases) {
      expect({ status: result.status, code: result.body.code }).toEqual({ status, code });
    }
    const unknownPolicy = await moderate({ body: multipart(red, { policy: 'nope' }) });
    expect([unknownPolicy.status, unknownPolicy.body.code]).toEqual([404, 'not_found']);
    const still = await moderate({ headers: { 'content-type': 'image/png' }, body: red });
    expect(still.body.verdict.action).toBe('block');
  });

  it('classifies with ad-hoc labels like the transformers pipeline', async () => {
    const response = await service.request('/v1/classify', {
      method: 'POST',
      body: multipart(red, { labels: 'a green image,a red image,a blue image' }),
    });
    const body = (await response.json()) as { results: { label: string; score: number }[] };
    expect(response.status).toBe(200);
    expect(body.results[0]?.label).toBe('a red image');
    expect(body.results[0]?.score).toBeGreaterThan(0.9);
  });

  it('returns unit-length embeddings for images and texts', async () => {
    const image = await service.request('/v1/embeddings', {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: red,
    });
    const text = await service.request('/v1/embeddings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: ['a red image', 'a blue image'] }),
    });
    const dims = new Set<number>();
    for (const response of [image, text]) {
      const body = (await response.json()) as { embeddings: number[][] };
      expect(response.status).toBe(200);
      for (const row of body.embeddings) {
        expect(Math.hypot(...row)).toBeCloseTo(1, 5);
        dims.add(row.length);
      }
    }
    expect(dims.size).toBe(1);
  });
});
