import { configureImageDecoding } from '../../shared/clip/index.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { createLogger } from '../../shared/logger/index.ts';
import { Lifecycle, stopOnSignals } from '../../shared/runtime/index.ts';
import type { CliCommand } from './command.ts';
import { UsageError } from './command.ts';
import { composeRoles, type Role, roles } from './serve-roles.ts';

const help = `Usage: clipmod serve [all|${roles.join('|')}]

Runs clipmod. With no role (or "all") the API and every worker run in one process — the quickstart.
A role name runs only that role, as in a scaled-out deployment.

Settings come from the environment (see .env.example): PORT, REDIS_URL, MODEL_DIR, CLIPMOD_ADMIN_KEY,
CLIPMOD_ALLOW_PRIVATE_NETWORKS, ... Without REDIS_URL, serve uses 127.0.0.1:6379 if it answers, else
starts a private redis-server (data under CLIPMOD_DATA_DIR).

SIGTERM or SIGINT: readiness goes false, then components stop in reverse order, each within
CLIPMOD_SHUTDOWN_TIMEOUT_MS; a second signal is ignored.

Example: PORT=8080 clipmod serve`;

function parseRoles(args: readonly string[]): Role[] {
  if (args.length > 1) throw new UsageError(`expected at most one role, got "${args.join(' ')}"`);
  const [role] = args;
  if (role === undefined || role === 'all') return [...roles];
  if (!(roles as readonly string[]).includes(role)) {
    throw new UsageError(`unknown role "${role}"; expected all, ${roles.join(', ')}`);
  }
  return [role as Role];
}

export const serveCommand: CliCommand = {
  path: ['serve'],
  summary: 'run the API and workers (all roles in one process, or one role)',
  help,
  async run(args, io) {
    const selected = parseRoles(args);
    const config = loadConfig(io.env);
    configureImageDecoding();
    const logger = createLogger({ level: config.LOG_LEVEL, name: `clipmod-${selected.join('+')}` });
    const lifecycle = new Lifecycle({ stopTimeoutMs: config.CLIPMOD_SHUTDOWN_TIMEOUT_MS, logger });
    const stopped = new Promise<number>((resolve) => stopOnSignals(lifecycle, logger, resolve));
    const composed = composeRoles({ config, logger, lifecycle, roles: selected });
    try {
      await lifecycle.start();
    } catch (error) {
      await lifecycle.stop();
      throw error;
    }
    const port = composed.apiPort();
    logger.info(
      { roles: selected, ...(port ? { url: `http://${config.HOST}:${port}` } : {}) },
      'clipmod is ready',
    );
    return stopped;
  },
};
