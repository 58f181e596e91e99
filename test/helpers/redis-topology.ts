// Real Redis topologies on loopback for the scale-out tests: a Redis Cluster made by redis-cli
// --cluster create, and a primary + replica watched by three redis-sentinel processes. Every process
// is a child of the test, stopped by its pid; data lives in a temporary folder removed on stop.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../shared/redis/index.ts';

export type RedisTopology = {
  /** REDIS_URL for clipmod. */
  url: string;
  /** Data-node ports (cluster nodes, or primary then replica). */
  ports: number[];
  stop(): Promise<void>;
};

export type SentinelTopology = RedisTopology & {
  sentinelPorts: number[];
  masterName: string;
  /** The primary the Sentinels currently name. */
  primaryPort(): Promise<number>;
  /** SIGKILLs the data node on `port` (no shutdown, no AOF flush) and waits until it has exited. */
  killNode(port: number): Promise<void>;
  /**
   * Starts the data node on `port` again from its AOF, as a replica of the primary the Sentinels name
   * (what a supervisor's start script does), and resolves once it is in sync.
   */
  restartNode(port: number): Promise<void>;
  /**
   * Resolves once every Sentinel names the same primary, that primary has its replica online, and no
   * Sentinel flags the replica down: the state in which WAIT 1 confirms writes again.
   */
  settled(timeoutMs?: number): Promise<void>;
};

export function hasBinary(binary: string): boolean {
  return spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0;
}

class ProcessGroup {
  readonly dir = mkdtempSync(join(tmpdir(), 'clipmod-topology-'));
  readonly #children: ChildProcess[] = [];

  start(binary: string, args: string[]): ChildProcess {
    const child = spawn(binary, args, { cwd: this.dir, stdio: 'ignore' });
    this.#children.push(child);
    return child;
  }

  async stop(): Promise<void> {
    await Promise.all(this.#children.map((child) => stopChild(child)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Settings every data node shares: loopback, AOF, noeviction — what clipmod requires in production. */
function dataNodeArgs(port: number, dir: string): string[] {
  // biome-ignore format: flag/value pairs read best one pair per line
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--appendonly', 'yes',
    '--appendfilename', `appendonly-${port}.aof`,
    '--appenddirname', `aof-${port}`,
    '--save', '',
    '--logfile', `redis-${port}.log`,
    '--maxmemory-policy', 'noeviction',
  ];
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One command against one node, on a short-lived connection. */
export async function nodeCommand(port: number, ...args: (string | number)[]): Promise<unknown> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await client.connect();
    const [command = '', ...rest] = args;
    return await client.call(String(command), ...rest);
  } finally {
    client.disconnect();
  }
}

async function killChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGKILL');
  await exited;
}

async function answersPing(port: number): Promise<boolean> {
  return (await nodeCommand(port, 'PING')) === 'PONG';
}

/** A Redis Cluster of `primaries` primaries (and `replicasPerPrimary` replicas each) on free ports. */
export async function startRedisCluster(primaries = 3, replicasPerPrimary = 0): Promise<RedisTopology> {
  const group = new ProcessGroup();
  const ports: number[] = [];
  try {
    for (let n = 0; n < primaries * (1 + replicasPerPrimary); n++) {
      const [port, busPort] = [await freePort(), await freePort()];
      ports.push(port);
      // biome-ignore format: flag/value pairs
      group.start('redis-server', [
        ...dataNodeArgs(port, group.dir),
        '--cluster-enabled', 'yes',
        '--cluster-port', String(busPort),
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', '2000',
      ]);
    }
    for (const port of ports) await waitFor(`redis-server on ${port}`, () => answersPing(port));
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        String(replicasPerPrimary),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    for (const port of ports) {
      await waitFor(`cluster_state:ok on ${port}`, async () =>
        String(await nodeCommand(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
      );
    }
  } catch (error) {
    await group.stop();
    throw error;
  }
  const seeds = ports.slice(0, primaries).map((port) => `127.0.0.1:${port}`);
  return { url: `redis+cluster://${seeds.join(',')}`, ports, stop: () => group.stop() };
}

/** A primary, one replica and three Sentinels (quorum 2) that fail over after 1 s of silence. */
export async function startRedisSentinel(masterName = 'clipmod-primary'): Promise<SentinelTopology> {
  const group = new ProcessGroup();
  const [primary, replica] = [await freePort(), await freePort()];
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  const dataNodes = new Map<number, ChildProcess>();
  const startReplica = (port: number, of: number) =>
    dataNodes.set(
      port,
      group.start('redis-server', [...dataNodeArgs(port, group.dir), '--replicaof', '127.0.0.1', String(of)]),
    );
  try {
    dataNodes.set(primary, group.start('redis-server', dataNodeArgs(primary, group.dir)));
    startReplica(replica, primary);
    await waitFor('the replica in sync', () => isReplicaInSync(replica));
    for (const port of sentinelPorts) {
      const config = join(group.dir, `sentinel-${port}.conf`);
      writeFileSync(
        config,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${group.dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${primary} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 5000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      group.start('redis-sentinel', [config]);
    }
    for (const port of sentinelPorts) {
      await waitFor(`sentinel ${port} sees the replica and its peers`, async () => {
        const info = String(await nodeCommand(port, 'INFO', 'sentinel'));
        return info.includes('status=ok,address=') && info.includes('slaves=1,sentinels=3');
      });
    }
  } catch (error) {
    await group.stop();
    throw error;
  }
  const hosts = sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',');
  const primaryNamedBy = async (sentinelPort: number) => {
    const [, port] = (await nodeCommand(sentinelPort, 'SENTINEL', 'get-master-addr-by-name', masterName)) as [
      string,
      string,
    ];
    return Number(port);
  };
  /** Every Sentinel names one primary, which has its replica online, and all see that replica healthy. */
  const isSettled = async () => {
    const named = new Set(await Promise.all(sentinelPorts.map(primaryNamedBy)));
    const [port] = [...named];
    if (named.size !== 1 || port === undefined || !(await hasReplicaOnline(port))) return false;
    const views = await Promise.all(sentinelPorts.map((at) => replicasSeenBy(at, masterName)));
    return views.every((replicas) => replicas.length === 1 && replicas.every(isHealthyReplica));
  };
  return {
    url: `redis+sentinel://${hosts}/${masterName}`,
    ports: [primary, replica],
    sentinelPorts,
    masterName,
    primaryPort: () => primaryNamedBy(sentinelPorts[0]!),
    killNode: (port) => killChild(dataNodes.get(port)),
    async restartNode(port) {
      // Only once every Sentinel names the same new primary: restarted while a failover is still
      // being decided, the node was once promoted straight back (a CI run of 2026-11-29).
      let primary = 0;
      await waitFor(`the Sentinels to agree on a primary other than ${port}`, async () => {
        const named = new Set(await Promise.all(sentinelPorts.map(primaryNamedBy)));
        primary = named.size === 1 ? [...named][0]! : port;
        return primary !== port;
      });
      startReplica(port, primary);
      // Settled rather than "this node in sync": should the Sentinels still promote it, a healthy pair
      // with the other node as replica is as good for the callers.
      await waitFor('the restarted node to rejoin a settled pair', isSettled, 30_000).catch(
        (error: Error) => {
          throw new Error(`${error.message}; its log ends:\n${logTail(group.dir, port)}`);
        },
      );
    },
    settled: (timeoutMs = 30_000) =>
      waitFor('the Sentinels to agree on a primary with its replica online', isSettled, timeoutMs),
    stop: () => group.stop(),
  };
}

function logTail(dir: string, port: number): string {
  const file = join(dir, `redis-${port}.log`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
}

async function isReplicaInSync(port: number): Promise<boolean> {
  return String(await nodeCommand(port, 'INFO', 'replication')).includes('master_link_status:up');
}

async function hasReplicaOnline(primaryPort: number): Promise<boolean> {
  const info = String(await nodeCommand(primaryPort, 'INFO', 'replication'));
  return info.includes('role:master') && /slave0:.*state=online/.test(info);
}

/** SENTINEL REPLICAS as field maps (RESP2 answers flat [field, value, …] lists). */
async function replicasSeenBy(sentinelPort: number, masterName: string): Promise<Map<string, string>[]> {
  const replicas = (await nodeCommand(sentinelPort, 'SENTINEL', 'REPLICAS', masterName)) as string[][];
  return replicas.map((flat) => {
    const fields = new Map<string, string>();
    for (let n = 0; n + 1 < flat.length; n += 2) fields.set(flat[n]!, flat[n + 1]!);
    return fields;
  });
}

/** Up, not flagged down or disconnected, and reporting itself a replica with its link to the primary up. */
function isHealthyReplica(replica: Map<string, string>): boolean {
  return (
    replica.get('flags') === 'slave' &&
    replica.get('role-reported') === 'slave' &&
    replica.get('master-link-status') === 'ok'
  );
}
