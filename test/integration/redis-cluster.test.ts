import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertRedisIsSafe,
  openRedis,
  type RedisConnection,
  waitForReplicas,
} from '../../shared/redis/index.ts';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { hasBinary, nodeCommand, type RedisTopology, startRedisCluster } from '../helpers/redis-topology.ts';
import { type ServeProcess, startServeProcess } from '../helpers/serve-process.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { type Receiver, startReceiver, verifiesWith, waitUntil } from '../helpers/webhook-receiver.ts';

// The whole pipeline on a real 3-primary Redis Cluster: the API in this process, two `serve inference`
// processes consuming one queue, a `serve webhooks` process delivering to a loopback receiver. Every key shares the prefix's hash tag, so Lua scripts, MULTI and
// BullMQ's multi-key scripts all land in one slot; a CROSSSLOT anywhere would fail these jobs.

const colorPolicy = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
};
const submissions = 24;

let cluster: RedisTopology;
let service: ServiceHarness;
let workers: ServeProcess[] = [];
let webhooks: ServeProcess;
let receiver: Receiver;
let client: RedisConnection;

beforeAll(async () => {
  if (!hasBinary('redis-cli')) throw new Error('redis-cli is needed (Debian: apt-get install redis-tools)');
  cluster = await startRedisCluster(3);
  receiver = await startReceiver();
  const env = {
    REDIS_URL: cluster.url,
    MODEL_DIR: await builtModel('color'),
    CLIPMOD_MAX_BATCH_SIZE: '4',
    CLIPMOD_MAX_BATCH_WAIT_MS: '100',
    CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
  };
  service = await startService({ env, roles: ['api'] });
  const processEnv = { ...env, CLIPMOD_REDIS_PREFIX: service.prefix };
  workers = [1, 2].map(() => startServeProcess('inference', processEnv));
  webhooks = startServeProcess('webhooks', processEnv);
  await Promise.all([...workers, webhooks].map((child) => child.ready()));
  client = await openRedis(cluster.url, 'producer', 'cluster-test');
}, 120_000);

afterAll(async () => {
  await Promise.all([...workers, webhooks].map((child) => child?.stop()));
  await service?.stop();
  await receiver?.stop();
  client?.disconnect();
  await cluster?.stop();
});

async function submit(image: Uint8Array): Promise<string> {
  const response = await service.request('/v1/moderations', {
    method: 'POST',
    headers: { 'content-type': 'image/png' },
    body: image,
  });
  // 202 normally; 200 when a fast worker finished the job before the API read the record back.
  expect([200, 202]).toContain(response.status);
  return ((await response.json()) as { id: string }).id;
}

async function finished(id: string): Promise<Record<string, any>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const body = (await (await service.request(`/v1/moderations/${id}?wait=5000`)).json()) as Record<
      string,
      any
    >;
    if (body.status === 'completed' || body.status === 'failed' || Date.now() > deadline) return body;
  }
}

/** Keys of this test's prefix on each primary. */
async function keysByPrimary(): Promise<Map<string, string[]>> {
  const nodes = (client as Cluster).nodes('master');
  const found = new Map<string, string[]>();
  for (const node of nodes) {
    const keys = await node.keys(`${service.prefix}*`);
    if (keys.length > 0) found.set(`${node.options.port}`, keys);
  }
  return found;
}

describe('Redis Cluster (3 primaries, two inference processes)', () => {
  it('processes every submission exactly once with the right verdict', async () => {
    const put = await service.request('/v1/policies/default', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(colorPolicy),
    });
    expect(put.status).toBe(201);
    const endpoint = await service.request('/v1/webhook-endpoints', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url('/hooks') }),
    });
    expect(endpoint.status).toBe(201);
    const { secret } = (await endpoint.json()) as { secret: string };
    const red = await solidImage('png', 32, 32, [230, 20, 20]);
    const green = await solidImage('png', 32, 32, [20, 200, 30]);
    const isRed = (n: number) => n % 3 !== 0;
    const ids = await Promise.all(
      Array.from({ length: submissions }, (_, n) => submit(isRed(n) ? red : green)),
    );
    const results = await Promise.all(ids.map((id) => finished(id)));

    expect(results.map((result) => result.status)).toEqual(ids.map(() => 'completed'));
    expect(results.map((result) => result.verdict.action)).toEqual(
      ids.map((_, n) => (isRed(n) ? 'block' : 'allow')),
    );
    // Exactly once: one "moderation finished" line per id across both processes, one attempt each.
    const finishedBy = workers.map((worker) =>
      worker
        .logs()
        .filter((line) => line.msg === 'moderation finished')
        .map((line) => String(line.moderationId)),
    );
    expect(finishedBy.flat().sort()).toEqual([...ids].sort());
    for (const handled of finishedBy) expect(handled.length).toBeGreaterThan(0);
    const attemptsStarted = await Promise.all(
      ids.map((id) => client.hget(`${service.prefix}:inference:${id}`, 'ats')),
    );
    expect(attemptsStarted).toEqual(ids.map(() => '1'));
    expect(results.map((result) => result.attempts)).toEqual(ids.map(() => 1));
    // And one signed moderation.completed event per moderation, delivered by the webhooks process.
    const events = await waitUntil(
      'a webhook per moderation',
      () => receiver.requests.length >= ids.length && receiver.requests,
      30_000,
    );
    const bodies = events.map((request) => JSON.parse(request.body.toString('utf8')) as Record<string, any>);
    expect(bodies.map((body) => body.data.id).sort()).toEqual([...ids].sort());
    expect(bodies.every((body) => body.type === 'moderation.completed')).toBe(true);
    expect(events.every((request) => verifiesWith(secret, request))).toBe(true);
  });

  it('keeps every key of the deployment in one hash slot on one primary', async () => {
    const byPrimary = await keysByPrimary();
    expect(byPrimary.size).toBe(1);
    const keys = [...byPrimary.values()][0]!;
    expect(keys.some((key) => key.includes(':inference:'))).toBe(true);
    expect(keys.some((key) => key.includes(':moderation:'))).toBe(true);
    const slots = new Set(await Promise.all(keys.map((key) => (client as Cluster).cluster('KEYSLOT', key))));
    expect(slots.size).toBe(1);
  });

  it('waits for replicas of the primary holding the prefix, and refuses when it has none', async () => {
    const options = { key: service.prefix, timeoutMs: 200 };
    await expect(waitForReplicas(client, { ...options, replicas: 0 })).resolves.toBeUndefined();
    const error = await waitForReplicas(client, { ...options, replicas: 1 }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ code: 'unavailable', retryAfterSeconds: 1 });
    expect(String(error)).toMatch(/to 0 of 1 replicas in 200 ms/);
  });

  it('refuses to start when any primary has an evicting maxmemory-policy, naming it', async () => {
    const port = cluster.ports[1]!;
    await nodeCommand(port, 'CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const error = await assertRedisIsSafe(client, { requireAof: true }).catch((caught: unknown) => caught);
      expect(String(error)).toMatch(
        new RegExp(`127\\.0\\.0\\.1:${port}: Redis maxmemory-policy is "allkeys-lru"`),
      );
    } finally {
      await nodeCommand(port, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
    await expect(assertRedisIsSafe(client, { requireAof: true })).resolves.toBeUndefined();
  });
});
