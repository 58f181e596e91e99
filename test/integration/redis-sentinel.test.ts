import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, freePort, openRedis } from '../../shared/redis/index.ts';
import { hasBinary, type SentinelTopology, startRedisSentinel } from '../helpers/redis-topology.ts';

// How clipmod's Redis connections behave behind Sentinels. Failover under load (../shared/RELIABILITY.md
// Q6: SENTINEL FAILOVER and kill -9 of the primary, with the API and workers running) is tested in
// test/chaos/redis-failover.test.ts.

let topology: SentinelTopology;

beforeAll(async () => {
  if (!hasBinary('redis-sentinel'))
    throw new Error('redis-sentinel is needed (Debian: apt-get install redis-sentinel)');
  topology = await startRedisSentinel();
}, 60_000);

afterAll(async () => {
  await topology?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Redis Sentinel connections', () => {
  it('refuses to start within seconds when no Sentinel answers, instead of retrying forever', async () => {
    const startedAt = Date.now();
    const error = await openRedis(
      `redis+sentinel://127.0.0.1:${await freePort()}/nobody`,
      'worker',
      'probe',
    ).catch((caught: unknown) => caught);
    expect(String(error)).toMatch(/cannot connect to Redis for probe: All sentinels are unreachable/);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it('every connection (duplicates too) reaches the new primary after kill -9 of the old one', async () => {
    // ioredis 5.9.2's own SentinelConnector left 38 of 40 such connections ended for good: the
    // +switch-master disconnect interrupted their reconnection (see shared/redis/sentinel-connector.ts).
    const opened = await Promise.all(
      Array.from({ length: 12 }, (_, n) =>
        connectRedis(topology.url, n % 2 ? 'worker' : 'request', `failover-${n}`),
      ),
    );
    // BullMQ gives its workers blocking connections made by duplicate().
    const duplicates = opened.slice(0, 4).map((client) => client.duplicate());
    for (const duplicate of duplicates) duplicate.on('error', () => {});
    await Promise.all(duplicates.map((duplicate) => duplicate.connect()));
    const clients = [...opened, ...duplicates];
    const closedDuringOutage = clients.pop()!;
    let isPinging = true;
    const pinging = (async () => {
      while (isPinging) {
        await Promise.all(clients.map((client) => client.ping().catch(() => undefined)));
        await sleep(20);
      }
    })();
    try {
      const oldPrimary = await topology.primaryPort();
      await topology.killNode(oldPrimary);
      // A connection closed while it reconnects stays closed: the detector's restart must not revive it.
      await sleep(300);
      closedDuringOutage.disconnect();
      const deadline = Date.now() + 30_000;
      while ((await topology.primaryPort()) === oldPrimary && Date.now() < deadline) await sleep(50);
      await topology.restartNode(oldPrimary);
      await waitForAll(clients, 15_000);
      expect(clients.map((client) => client.status)).toEqual(clients.map(() => 'ready'));
      const written = await Promise.all(clients.map((client, n) => client.set(`failover-${n}`, 'x')));
      expect(written).toEqual(clients.map(() => 'OK'));
      // ('end', or 'reconnecting' with no retry left when ioredis was between attempts.)
      expect(closedDuringOutage.status).not.toBe('ready');
    } finally {
      isPinging = false;
      await pinging;
      for (const client of clients) client.disconnect();
    }
  }, 90_000);
});

async function waitForAll(clients: readonly Redis[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && clients.some((client) => client.status !== 'ready')) await sleep(100);
}
