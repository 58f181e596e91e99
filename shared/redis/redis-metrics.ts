import type { Cluster, Redis } from 'ioredis';
import { gaugeFor, metricCatalog, type Registry, readWithinScrape } from '../metrics/index.ts';
import { parseRedisInfo } from './connections.ts';

// Redis health as metrics, read when Prometheus scrapes: whether each named connection of this
// process is ready, and the server's maxmemory-policy. The service refuses to start on an evicting
// policy, but CONFIG SET can change it later; the alert on this metric catches that.

export type ObservedRedis = {
  /** The process's connections by name (`main`, `inference`, ...), as they are at scrape time. */
  connections(): ReadonlyMap<string, Redis | Cluster>;
  /** The connection INFO is read through (a fail-fast producer connection). */
  infoClient(): Redis | Cluster | undefined;
};

export function observeRedis(registry: Registry, observed: ObservedRedis): void {
  gaugeFor(registry, metricCatalog.redisConnected, function collect() {
    this.reset();
    for (const [connection, client] of observed.connections()) {
      this.set({ connection }, client.status === 'ready' ? 1 : 0);
    }
  });
  gaugeFor(registry, metricCatalog.redisMaxmemoryPolicy, async function collect() {
    this.reset();
    const policy = await maxmemoryPolicy(observed.infoClient());
    if (policy !== undefined) this.set({ policy }, 1);
  });
}

async function maxmemoryPolicy(client: Redis | Cluster | undefined): Promise<string | undefined> {
  if (client?.status !== 'ready') return undefined;
  const info = await readWithinScrape(client.info('memory'));
  return info === undefined ? undefined : parseRedisInfo(info).get('maxmemory_policy');
}
