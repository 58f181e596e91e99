// `clipmod serve <role>` as a child process, the way a scaled-out deployment runs it: JSON log lines
// collected for assertions, readiness taken from the "clipmod is ready" line, stopped by pid.
import { type ChildProcess, spawn } from 'node:child_process';

const repoRoot = new URL('../../', import.meta.url).pathname;

export type ServeProcess = {
  child: ChildProcess;
  /** Parsed JSON log lines so far (non-JSON output is kept in `output`). */
  logs(): Record<string, unknown>[];
  output(): string;
  /** Resolves once the process logged that it is ready; rejects if it exits first or takes too long. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
};

export type ServeProcessOptions = {
  /**
   * A command that execs the serve command, e.g. `['ip', 'netns', 'exec', name]` to run it in a network
   * namespace. It must exec (not fork), so that the child's pid stays the node process that stop() signals.
   */
  commandPrefix?: readonly string[];
};

export function startServeProcess(
  role: string,
  env: Record<string, string>,
  options: ServeProcessOptions = {},
): ServeProcess {
  const [command, ...args] = [
    ...(options.commandPrefix ?? []),
    process.execPath,
    ...['--import', 'tsx', 'services/cli/main.ts', 'serve', role],
  ];
  const child = spawn(command!, args, {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', CLIPMOD_PROBE_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs = () =>
    output.split('\n').flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return {
    child,
    logs,
    output: () => output,
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes('clipmod is ready')) {
        if (child.exitCode !== null) throw new Error(`serve ${role} exited ${child.exitCode}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`serve ${role} not ready in ${timeoutMs} ms:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
        return child.exitCode;
      const pid = child.pid;
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
