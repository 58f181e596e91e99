import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../shared/redis/embedded-redis.ts';

// The test command needs nothing running beforehand: it starts a private redis-server on a free
// loopback port and hands its URL to every test file through REDIS_URL.
let redis: EmbeddedRedis | undefined;
let dataDir = '';

export async function setup(): Promise<void> {
  dataDir = join(tmpdir(), `clipmod-test-redis-${process.pid}`);
  redis = await startEmbeddedRedis({ dataDir });
  process.env.REDIS_URL = redis.url;
  process.env.CLIPMOD_TEST_REDIS_PID = String(redis.pid);
  console.log(`[clipmod tests] private redis-server pid ${redis.pid} at ${redis.url}`);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
