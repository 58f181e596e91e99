import { z } from 'zod';

// One schema for every process. Names keep DESIGN.md's settings (PORT, REDIS_URL, MODEL_DIR,
// CLIPMOD_ADMIN_KEY, CLIPMOD_ALLOW_PRIVATE_NETWORKS); clipmod's own are prefixed CLIPMOD_ and carry
// their unit in the name. `.env.example` mirrors this file, one comment per setting.

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const cidrList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  )
  .refine((parts) => parts.every((part) => /^[0-9a-fA-F:.]+\/\d{1,3}$/.test(part)), {
    message: 'expected comma-separated CIDRs such as 127.0.0.0/8,10.1.0.0/16',
  });

const redisUrl = z
  .string()
  .refine((value) => URL.canParse(value) && /^rediss?:$/.test(new URL(value).protocol), {
    message: 'expected a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0',
  });

export const configSchema = z.object({
  /** API listen port. */
  PORT: integer(1, 65535).default(8080),
  /** API listen address; 0.0.0.0 in containers. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Redis for queues and state. Unset: 127.0.0.1:6379 if it answers, else a private redis-server child. */
  REDIS_URL: redisUrl.optional(),
  /** Hash-tagged key prefix, so every key of one deployment lands in one Redis Cluster slot. */
  CLIPMOD_REDIS_PREFIX: z
    .string()
    .regex(/^\{[^{}]+\}/, 'must start with a {hash-tag}, e.g. {clipmod}')
    .default('{clipmod}'),
  /** Where the embedded redis-server keeps its files (only used when REDIS_URL is unset). */
  CLIPMOD_DATA_DIR: z.string().min(1).default('.data'),
  /** Model folder (Hugging Face ONNX layout). */
  MODEL_DIR: z.string().min(1).optional(),
  /** Bootstrap API key with moderate+admin scopes for tenant "default". */
  CLIPMOD_ADMIN_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  /** CIDRs that outgoing requests (image URLs, webhooks) may reach although private. */
  CLIPMOD_ALLOW_PRIVATE_NETWORKS: cidrList.default([]),
  /** pino level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Deadline for each component to stop on SIGTERM/SIGINT. */
  CLIPMOD_SHUTDOWN_TIMEOUT_MS: integer(100, 600_000).default(10_000),
  /** Probe server port of worker-only processes (/livez, /readyz, /metrics); 0 picks a free one. */
  CLIPMOD_PROBE_PORT: integer(0, 65535).default(9464),
  /** Refuse to start when Redis persistence (AOF) is off; on in production profiles. */
  CLIPMOD_REQUIRE_AOF: booleanFlag.default(false),
});

export type Config = Readonly<z.infer<typeof configSchema>>;
