import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { ClipmodError } from '../errors/index.ts';

// A private redis-server child for the quickstart and the test command: loopback only (plus any
// address a test names), AOF on, noeviction, data in a folder of ours, stopped by pid when its owner
// stops.

export type EmbeddedRedis = {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
};

export type EmbeddedRedisOptions = {
  dataDir: string;
  /** 0 picks a free port. */
  port?: number;
  binary?: string;
  startTimeoutMs?: number;
  /**
   * Addresses to listen on besides loopback (test-only: a veth address the test created for a worker
   * in a network namespace). They must exist when the server starts.
   */
  extraBindAddresses?: readonly string[];
};

export function hasRedisServerBinary(binary = 'redis-server'): boolean {
  return spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** True when something accepts a TCP connection and answers PING with PONG. */
export async function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const finish = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('data', (data) => finish(data.toString().startsWith('+PONG')));
    socket.connect(port, host, () => socket.write('PING\r\n'));
  });
}

export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const binary = options.binary ?? 'redis-server';
  if (!hasRedisServerBinary(binary)) {
    throw new ClipmodError(
      'invalid_config',
      'no Redis: set REDIS_URL, or install redis-server (Debian/Ubuntu: apt-get install redis-server)',
    );
  }
  mkdirSync(options.dataDir, { recursive: true });
  const port = options.port || (await freePort());
  const args = redisArguments(port, options.dataDir, options.extraBindAddresses ?? []);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitUntilReady(child, port, options.startTimeoutMs ?? 10_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    stop: () => stopChild(child),
  };
}

function redisArguments(port: number, dataDir: string, extraBind: readonly string[]): string[] {
  // Protected mode refuses every non-loopback client of a password-less server; a caller that names
  // extra addresses wants clients there (and only there: the bind list still limits who can connect).
  const protectedMode = extraBind.length === 0 ? 'yes' : 'no';
  // biome-ignore format: flag/value pairs read best one pair per line
  return [
    '--port', String(port),
    '--bind', '127.0.0.1', ...extraBind,
    '--protected-mode', protectedMode,
    '--dir', dataDir,
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--save', '',
    '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no',
  ];
}

async function waitUntilReady(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-2000);
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (await redisAnswers('127.0.0.1', port, 200)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new ClipmodError(
    'unavailable',
    `redis-server did not start on port ${port}: ${output.trim().slice(-300)}`,
  );
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
