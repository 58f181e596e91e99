import { Cluster, type ClusterOptions, Command, Redis, type RedisOptions } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';
import { parseRedisUrl, type RedisTarget } from './redis-url.ts';
import { FailoverSafeSentinelConnector } from './sentinel-connector.ts';

/** A connection to any topology clipmod supports; every store and queue takes this type. */
export type RedisConnection = Redis | Cluster;

/**
 * `worker`: blocking BullMQ connections, retry forever (BullMQ requires maxRetriesPerRequest null).
 * `producer`: non-blocking writers (CLI commands, the main connection of every process): fail fast
 * while Redis is away, and give a slow-but-alive Redis 2 s per command.
 * `request`: the API's request paths; like `producer`, but a hung Redis is detected within 750 ms
 * so an HTTP request is answered 503 within 1 s (RELIABILITY.md Q5a).
 */
export type RedisRole = 'worker' | 'producer' | 'request';

/** Per-command limit of `request` connections; leaves room for the HTTP round trip within 1 s. */
export const requestCommandTimeoutMs = 750;

const reconnectDelayMs = (attempt: number) => Math.min(attempt * 200, 2_000);

/**
 * A `producer` or `request` connection that has waited this long for any reply while commands are
 * outstanding is presumed dead: ioredis destroys it and reconnects. After a network partition heals,
 * TCP resends what an old connection holds only on its exponential retransmission schedule — seconds
 * after a short partition, minutes after a long one — and every command queued behind it times out;
 * a new connection is used at once (RELIABILITY.md Q5b: a worker failed jobs for 7 s after an 8 s
 * partition healed). `worker` connections go without: BullMQ blocks them for up to 10 s and watches
 * its blocking reads itself, and ioredis 5.9 leaves this timer armed after a close (ioredis#2147),
 * which held a stopping worker process open until it fired.
 */
const socketTimeoutMs = 3_000;

export function redisOptionsFor(role: RedisRole): RedisOptions {
  const common: RedisOptions = { lazyConnect: true, connectTimeout: 5_000, retryStrategy: reconnectDelayMs };
  if (role === 'worker') return { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true };
  const commandTimeout = role === 'request' ? requestCommandTimeoutMs : 2_000;
  return {
    ...common,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout,
    socketTimeout: socketTimeoutMs,
  };
}

/**
 * Sentinel: ask the Sentinels for the primary, and listen for `+switch-master` so a failover is
 * followed at once (through FailoverSafeSentinelConnector: ioredis's own loses connections for good
 * when the primary is killed). Before the first connection the retries are bounded, so a wrong address
 * stops the process at start instead of hanging; afterwards they never end.
 */
function sentinelClient(target: Extract<RedisTarget, { mode: 'sentinel' }>, options: RedisOptions): Redis {
  let hasBeenReady = false;
  const client = new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.masterName,
    db: target.db,
    failoverDetector: true,
    Connector: FailoverSafeSentinelConnector,
    sentinelRetryStrategy: (attempt) => (!hasBeenReady && attempt > 5 ? null : reconnectDelayMs(attempt)),
    ...credentialsOf(target),
    ...(target.sentinelUsername ? { sentinelUsername: target.sentinelUsername } : {}),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
  });
  client.once('ready', () => {
    hasBeenReady = true;
  });
  return client;
}

/**
 * Cluster: node connections inherit the role's settings; the producer's fail-fast behaviour comes from
 * the cluster-level offline queue (ioredis forces it on for node connections) and commandTimeout.
 */
function clusterClient(target: Extract<RedisTarget, { mode: 'cluster' }>, options: RedisOptions): Cluster {
  const { retryStrategy: _retry, enableOfflineQueue, lazyConnect: _lazy, ...nodeOptions } = options;
  const clusterOptions: ClusterOptions = {
    lazyConnect: true,
    enableOfflineQueue: enableOfflineQueue ?? true,
    clusterRetryStrategy: reconnectDelayMs,
    slotsRefreshTimeout: 2_000,
    redisOptions: { ...nodeOptions, ...credentialsOf(target), ...(target.tls ? { tls: {} } : {}) },
    // TLS certificates of managed clusters name the hosts the nodes announce: keep names, not IPs.
    ...(target.tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
  };
  return new Cluster(target.nodes, clusterOptions);
}

function credentialsOf(target: { username?: string; password?: string }): RedisOptions {
  return {
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
  };
}

function createClient(url: string, role: RedisRole, name: string): RedisConnection {
  const target = parseRedisUrl(url);
  const options: RedisOptions = { ...redisOptionsFor(role), connectionName: `clipmod:${name}` };
  if (target.mode === 'cluster') return clusterClient(target, options);
  if (target.mode === 'sentinel') return sentinelClient(target, options);
  return new Redis(target.url, options);
}

/**
 * The connection factory of every clipmod process: standalone, Sentinel or Cluster, chosen by the
 * REDIS_URL scheme (see redis-url.ts). Resolves once the connection is ready.
 */
export async function openRedis(url: string, role: RedisRole, name: string): Promise<RedisConnection> {
  const client = createClient(url, role, name);
  client.on('error', () => {
    // Connection errors surface through commands and readiness; without a listener ioredis
    // would print every reconnect attempt to stderr.
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new ClipmodError('unavailable', `cannot connect to Redis for ${name}: ${(error as Error).message}`);
  }
  return client;
}

/** A single-node connection (standalone, or the primary a Sentinel names), for code that needs `Redis`. */
export async function connectRedis(url: string, role: RedisRole, name: string): Promise<Redis> {
  if (parseRedisUrl(url).mode === 'cluster') {
    throw new ClipmodError(
      'invalid_config',
      `${name} needs a single Redis node; use openRedis for a Cluster`,
    );
  }
  return (await openRedis(url, role, name)) as Redis;
}

export type RedisSafetyOptions = { requireAof: boolean };

/** Parse `INFO` text into a map (works on managed Redis where CONFIG is disabled). */
export function parseRedisInfo(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** Problems that make a Redis unsafe for queues; empty when it is fine. */
export function redisSafetyProblems(info: Map<string, string>, options: RedisSafetyOptions): string[] {
  const problems: string[] = [];
  const policy = info.get('maxmemory_policy') ?? 'unknown';
  if (policy !== 'noeviction') {
    problems.push(
      `Redis maxmemory-policy is "${policy}"; queues need "noeviction" or accepted jobs can be evicted. ` +
        'Fix: redis-cli CONFIG SET maxmemory-policy noeviction (and set it in redis.conf)',
    );
  }
  if (options.requireAof && info.get('aof_enabled') !== '1') {
    problems.push(
      'Redis AOF persistence is off; accepted jobs would be lost on a crash. ' +
        'Fix: redis-cli CONFIG SET appendonly yes (and appendonly yes in redis.conf)',
    );
  }
  return problems;
}

/** Every primary is checked: on a Cluster each one holds queues' keys (for other prefixes) too. */
export async function assertRedisIsSafe(client: RedisConnection, options: RedisSafetyOptions): Promise<void> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const problems: string[] = [];
  for (const node of nodes) {
    const found = redisSafetyProblems(parseRedisInfo(await node.info()), options);
    const where = client instanceof Cluster ? `${node.options.host}:${node.options.port}: ` : '';
    problems.push(...found.map((problem) => `${where}${problem}`));
  }
  if (problems.length > 0) throw new ClipmodError('invalid_config', problems.join('; '));
}

const keySlots = new WeakMap<Cluster, Map<string, number>>();

/** The node connection that holds `key` on a Cluster (where WAIT must run), or the client itself. */
async function nodeHolding(client: RedisConnection, key: string): Promise<Redis | undefined> {
  if (!(client instanceof Cluster)) return client;
  const slots = keySlots.get(client) ?? new Map<string, number>();
  keySlots.set(client, slots);
  const slot = slots.get(key) ?? Number(await client.cluster('KEYSLOT', key));
  slots.set(key, slot);
  const primary = client.slots[slot]?.[0];
  return client.nodes('master').find((node) => `${node.options.host}:${node.options.port}` === primary);
}

/**
 * WAIT blocks by design for up to `timeoutMs`, longer than a `request` connection's commandTimeout:
 * a command whose own timer is set first keeps it (ioredis sets the connection's only when none is).
 */
async function replicaWait(node: Redis, replicas: number, timeoutMs: number): Promise<number> {
  const command = new Command('wait', [replicas, timeoutMs]);
  command.setTimeout(timeoutMs + 1_000);
  return Number(await node.sendCommand(command));
}

/**
 * Waits until `replicas` replicas hold every write this connection has made so far (Redis WAIT).
 * Replication is asynchronous: a primary that fails over right after acknowledging a write loses it.
 * Called before the API answers 202, it makes "accepted" mean "on a replica too"; when the replicas do
 * not confirm in time the submission is answered 503 and the client retries (with its Idempotency-Key).
 */
export async function waitForReplicas(
  client: RedisConnection,
  options: { key: string; replicas: number; timeoutMs: number },
): Promise<void> {
  if (options.replicas <= 0) return;
  const node = await nodeHolding(client, options.key);
  const acknowledged = node === undefined ? 0 : await replicaWait(node, options.replicas, options.timeoutMs);
  if (acknowledged < options.replicas) {
    throw new ClipmodError(
      'unavailable',
      `Redis replicated the write to ${acknowledged} of ${options.replicas} replicas in ${options.timeoutMs} ms`,
      { retryAfterSeconds: 1 },
    );
  }
}
