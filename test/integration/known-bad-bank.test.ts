import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtModel } from '../helpers/models.ts';
import { imageVariants, patternImage, variantOf } from '../helpers/pattern-images.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// The known-bad bank and image search on the `texture` model, whose embeddings keep edited copies of a
// picture near: a bank entry must catch resized, re-encoded, cropped and mirrored copies, and nothing
// else; retained embeddings must be found again by an edited copy.

// Independent scoring without a baseline scores the raw cosine, and the prompt cannot come near these
// pictures (the texture model's text tower knows colour words, not layouts): a trigger can only come
// from the bank.
const policy = {
  labels: [{ id: 'known-bad', prompts: ['a red image'], threshold: 0.9, action: 'block' }],
  scoring: 'independent',
  baseline: [],
};

let service: ServiceHarness;
let banked: Uint8Array;

beforeAll(async () => {
  service = await startService({
    env: { MODEL_DIR: await builtModel('texture'), CLIPMOD_MAX_BATCH_SIZE: '8' },
  });
  expect((await putJson('/v1/policies/default', policy)).status).toBe(201);
  expect(
    (await putJson('/v1/tenant-settings', { retention: { enabled: true, ttlSeconds: 3_600 } })).status,
  ).toBe(200);
  banked = await patternImage(1);
});

afterAll(async () => {
  await service?.stop();
});

function putJson(path: string, body: unknown) {
  return service.request(path, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

function form(image: Uint8Array, fields: Record<string, string> = {}): FormData {
  const body = new FormData();
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  body.append('image', new Blob([image]), 'image.bin');
  return body;
}

async function moderate(image: Uint8Array) {
  const response = await service.request('/v1/moderations?wait=20000', { method: 'POST', body: form(image) });
  expect(response.status).toBe(200);
  return (await response.json()) as {
    id: string;
    verdict: { action: string; labels: Record<string, any>[] };
  };
}

describe('known-bad bank', () => {
  let entryId = '';

  it('files an example image under a label, embedded by the worker', async () => {
    const response = await service.request('/v1/policies/default/labels/known-bad/bank', {
      method: 'POST',
      body: form(banked, { note: 'case 42' }),
    });
    expect(response.status).toBe(201);
    const entry = (await response.json()) as Record<string, unknown>;
    expect(entry).toMatchObject({ policyId: 'default', label: 'known-bad', note: 'case 42', dim: 64 });
    expect(entry.model).toContain('texture');
    entryId = String(entry.id);
    const listed = (await (await service.request('/v1/policies/default/labels/known-bad/bank')).json()) as {
      data: { id: string }[];
    };
    expect(listed.data.map((item: { id: string }) => item.id)).toEqual([entryId]);
  });

  it('refuses a label the policy does not have', async () => {
    const response = await service.request('/v1/policies/default/labels/nope/bank', {
      method: 'POST',
      body: form(banked),
    });
    expect(response.status).toBe(404);
  });

  it.each(imageVariants)(
    'blocks a %s copy of the banked image, naming the entry as evidence',
    async (variant) => {
      const { verdict } = await moderate(await variantOf(banked, variant));
      expect(verdict.action).toBe('block');
      const label = verdict.labels[0]!;
      expect(label.triggered).toBe(true);
      expect(label.score).toBeLessThan(0.9);
      expect(label.evidence.bankEntry).toBe(entryId);
      expect(label.evidence.similarity).toBeGreaterThan(0.9);
    },
  );

  it('allows different pictures', async () => {
    for (const seed of [2, 3, 4]) {
      const { verdict } = await moderate(await patternImage(seed));
      expect(verdict.action).toBe('allow');
      expect(verdict.labels[0]!.evidence.bankEntry).toBeUndefined();
    }
  });

  it('stops matching once the entry is deleted', async () => {
    const deleted = await service.request(`/v1/policies/default/bank/${entryId}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    const { verdict } = await moderate(await variantOf(banked, 'mirrored'));
    expect(verdict.action).toBe('allow');
  });
});

describe('image search over retained embeddings', () => {
  it('finds the moderation of a picture from an edited copy, best first, with its verdict', async () => {
    const target = await moderate(await patternImage(7));
    await moderate(await patternImage(8));
    const response = await service.request('/v1/search?k=3', {
      method: 'POST',
      body: form(await variantOf(await patternImage(7), 'cropped-90')),
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as {
      data: { moderationId: string; score: number; verdict: any }[];
    };
    expect(result.data).toHaveLength(3);
    expect(result.data[0]!.moderationId).toBe(target.id);
    expect(result.data[0]!.score).toBeGreaterThan(0.9);
    expect(result.data[1]!.score).toBeLessThan(0.8);
    expect(result.data[0]!.verdict).toMatchObject({ action: 'allow', policy: { id: 'default', version: 1 } });
  });

  it('keeps nothing for a tenant that has not opted in', async () => {
    const keys = await service.redis.keys(`${service.prefix}:retained:*:vectors`);
    expect(keys).toEqual([`${service.prefix}:retained:default:vectors`]);
    const stored = await service.redis.hlen(keys[0]!);
    expect(stored).toBeGreaterThanOrEqual(2);
    await putJson('/v1/tenant-settings', { retention: { enabled: false, ttlSeconds: 3_600 } });
    await moderate(await patternImage(9));
    expect(await service.redis.hlen(keys[0]!)).toBe(stored);
  });

  it('rejects a k out of range', async () => {
    const response = await service.request('/v1/search?k=0', { method: 'POST', body: form(banked) });
    expect(response.status).toBe(400);
  });
});
