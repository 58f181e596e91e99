import { describe, expect, it } from 'vitest';
import { InMemoryTextEmbeddingCache } from '../../shared/clip/index.ts';
import { type PolicyDocument, validatePolicy } from '../../shared/policy/index.ts';
import { PreparedPolicies } from '../../workers/inference/prepared-policies.ts';

// Prepared policy versions: shared preparations, only new texts encoded, failures not remembered.
// The model is a stand-in text encoder (one-hot per text), so the test counts exactly what was encoded.

const v1 = validatePolicy({
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image'],
});
const v2 = validatePolicy({ ...v1, baseline: ['a green image', 'a blue image'] });

function setup(documents: Record<number, PolicyDocument>) {
  const encoded: string[] = [];
  const loads: number[] = [];
  let isRedisDown = false;
  const policies = new PreparedPolicies({
    model: {
      modelId: 'stand-in',
      embeddingDim: 4,
      encodeTexts: async (texts) => {
        encoded.push(...texts);
        return Float32Array.from(texts.flatMap((_, i) => [1, i, 0, 0]));
      },
    },
    textCache: new InMemoryTextEmbeddingCache({ maxEntries: 100 }),
    loadPolicy: async (_tenant, _id, version) => {
      loads.push(version);
      if (isRedisDown) throw new Error('Connection is closed.');
      return documents[version];
    },
  });
  return { policies, encoded, loads, failRedis: (isDown: boolean) => (isRedisDown = isDown) };
}

describe('PreparedPolicies', () => {
  it('shares one preparation between concurrent requests for a version', async () => {
    const { policies, encoded, loads } = setup({ 1: v1 });
    const [a, b] = await Promise.all([policies.get('t', 'p', 1), policies.get('t', 'p', 1)]);
    expect(a).toBe(b);
    expect(loads).toEqual([1]);
    expect(encoded).toEqual(['a red image', 'a green image']);
  });

  it('encodes only the texts a new version adds', async () => {
    const { policies, encoded } = setup({ 1: v1, 2: v2 });
    await policies.get('t', 'p', 1);
    await policies.get('t', 'p', 2);
    expect(encoded).toEqual(['a red image', 'a green image', 'a blue image']);
  });

  it('answers not_found for a missing version and retries a failed load next time', async () => {
    const { policies, loads, failRedis } = setup({ 1: v1 });
    await expect(policies.get('t', 'p', 7)).rejects.toMatchObject({ code: 'not_found' });
    failRedis(true);
    await expect(policies.get('t', 'p', 1)).rejects.toThrow('Connection is closed');
    failRedis(false);
    expect((await policies.get('t', 'p', 1)).document).toEqual(v1);
    expect(loads).toEqual([7, 1, 1]);
  });

  it('prepares a draft without keeping it', async () => {
    const { policies } = setup({});
    const prepared = await policies.prepare(v2);
    expect(prepared.classes.length).toBe(3 * 4);
    expect(policies.size).toBe(0);
  });
});
