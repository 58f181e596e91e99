import { DEFAULT_TOKENIZER_DIR, loadClipTokenizer } from '../../shared/clip/index.ts';
import { loadConfig } from '../../shared/config/index.ts';
import { ClipmodError } from '../../shared/errors/index.ts';
import { PolicyStore, policyIdPattern, starterPolicy } from '../../shared/policy/index.ts';
import { connectRedis } from '../../shared/redis/index.ts';
import { type CliCommand, UsageError } from './command.ts';
import { parseCommandArgs } from './parse-args.ts';

const help = `Usage: clipmod policy install-starter [--tenant NAME] [--id ID] [--force] [--print]

Installs clipmod's starter policy (sexual content, nudity, graphic violence and gore, weapons, drugs,
self-harm, hate symbols; with exclude prompts for look-alikes such as toy guns, museum statues and
medical imagery) as policy ID of TENANT, in the Redis that REDIS_URL names (default
redis://127.0.0.1:6379; \`clipmod serve\` logs the one it uses) under CLIPMOD_REDIS_PREFIX. Running
workers pick it up within a second. The author recorded in its version history is "cli:install-starter".

Its thresholds are UNCALIBRATED starting points: tune them on labelled images from your own traffic
with your production model (dry runs and shadow mode help) before trusting its blocks.

Options:
  --tenant NAME   tenant to install for (default "default", the tenant of CLIPMOD_ADMIN_KEY)
  --id ID         policy id (default "default", the policy moderations use when they name none)
  --force         install even if the policy exists (as a new version; roll back to undo)
  --print         write the starter policy as JSON to stdout instead, to edit and PUT yourself

Example:
  REDIS_URL=redis://127.0.0.1:6379 clipmod policy install-starter --tenant default`;

const options = {
  tenant: { type: 'string', default: 'default' },
  id: { type: 'string', default: 'default' },
  force: { type: 'boolean', default: false },
  print: { type: 'boolean', default: false },
} as const;

const author = 'cli:install-starter';

export const policyInstallStarterCommand: CliCommand = {
  path: ['policy', 'install-starter'],
  summary: 'install the starter policy (uncalibrated) for a tenant',
  help,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, options);
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    for (const [flag, value] of [
      ['--tenant', values.tenant],
      ['--id', values.id],
    ] as const) {
      if (!policyIdPattern.test(value)) throw new UsageError(`${flag} must match ${policyIdPattern.source}`);
    }
    // Validated as a PUT would be, with the real tokenizer: a prompt past 77 tokens fails here, not later.
    const tokenizer = await loadClipTokenizer(DEFAULT_TOKENIZER_DIR);
    const document = starterPolicy({ countTokens: (text) => tokenizer.countTokens(text) });
    if (values.print) {
      io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
      return 0;
    }
    const config = loadConfig(io.env);
    const redis = await connectRedis(
      config.REDIS_URL ?? 'redis://127.0.0.1:6379',
      'producer',
      'install-starter',
    );
    try {
      const store = new PolicyStore({ redis, prefix: config.CLIPMOD_REDIS_PREFIX });
      const existing = await store.get(values.tenant, values.id);
      if (existing !== undefined && !values.force) {
        throw new ClipmodError(
          'conflict',
          `tenant "${values.tenant}" already has policy "${values.id}" (version ${existing.version}); --force installs the starter as a new version`,
        );
      }
      const { policy } = await store.put(values.tenant, values.id, document, author);
      io.stdout.write(
        `installed the starter policy as "${values.id}" version ${policy.version} for tenant "${values.tenant}"; ` +
          'its thresholds are uncalibrated: tune them before trusting its blocks\n',
      );
      return 0;
    } finally {
      redis.disconnect();
    }
  },
};
