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

// The topology is in the scheme; shared/redis parses the host lists of the Cluster and Sentinel forms.
const redisUrl = z
  .string()
  .refine(
    (value) =>
      (URL.canParse(value) && /^rediss?:$/.test(new URL(value).protocol)) ||
      /^rediss?\+(cluster|sentinel):\/\/[^/?#]+/.test(value),
    {
      message:
        'expected redis://host:port[/db] (or rediss://), redis+cluster://host:port,host:port or ' +
        'redis+sentinel://host:port,host:port/<primary name>',
    },
  );

/** Comma-separated delays in milliseconds, e.g. the webhook retry schedule. */
const delayList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  )
  .refine((parts) => parts.length <= 20 && parts.every((part) => /^\d{1,9}$/.test(part)), {
    message: 'expected up to 20 comma-separated whole milliseconds, e.g. 5000,300000,1800000',
  })
  .transform((parts) => parts.map(Number));

export const configSchema = z.object({
  /** API listen port; 0 picks a free one (logged at start). */
  PORT: integer(0, 65535).default(8080),
  /** API listen address; 0.0.0.0 in containers. */
  HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * Redis for queues and state: redis:// (standalone), redis+cluster:// or redis+sentinel://.
   * Unset: 127.0.0.1:6379 if it answers, else a private redis-server child.
   */
  REDIS_URL: redisUrl.optional(),
  /** Hash-tagged key prefix, so every key of one deployment lands in one Redis Cluster slot. */
  CLIPMOD_REDIS_PREFIX: z
    .string()
    .regex(/^\{[^{}]+\}/, 'must start with a {hash-tag}, e.g. {clipmod}')
    .default('{clipmod}'),
  /**
   * Replicas that must hold a submission before the API answers 202 (Redis WAIT, 1 s). Replication is
   * asynchronous: with 0, a failover right after a 202 can lose the submission. 1+ with Sentinel/Cluster.
   */
  CLIPMOD_REDIS_WAIT_REPLICAS: integer(0, 16).default(0),
  /** Where the embedded redis-server keeps its files (only used when REDIS_URL is unset). */
  CLIPMOD_DATA_DIR: z.string().min(1).default('.data'),
  /** Model folder (Hugging Face ONNX layout). */
  MODEL_DIR: z.string().min(1).optional(),
  /** Bootstrap API key with moderate+admin scopes for tenant "default". */
  CLIPMOD_ADMIN_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Sustained requests per minute per API key on model routes (token bucket); 0 turns limiting off. */
  CLIPMOD_RATE_LIMIT_PER_MINUTE: integer(0, 1_000_000).default(600),
  /** Requests one API key may make at once before the per-minute rate applies (bucket size). */
  CLIPMOD_RATE_LIMIT_BURST: integer(1, 1_000_000).default(60),
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
  /** Folder of models fetched or built by `serve` when MODEL_DIR is unset. */
  CLIPMOD_MODEL_CACHE_DIR: z.string().min(1).default('.data/models'),
  /** Hugging Face hub (or mirror) that `serve` fetches the default model from when MODEL_DIR is unset. */
  HF_ENDPOINT: z.url({ protocol: /^https?$/ }).default('https://huggingface.co'),
  /** Hugging Face token, for gated or private model repos. */
  HF_TOKEN: z.string().min(1).optional(),
  /** ONNX execution provider: auto (GPU first, then CPU), cuda, tensorrt or cpu. */
  CLIPMOD_EXECUTION_PROVIDER: z.enum(['auto', 'cuda', 'tensorrt', 'cpu']).default('auto'),
  /** ONNX intra-op threads; 0 = one per core minus one, leaving a core to image decoding. */
  CLIPMOD_INTRA_OP_THREADS: integer(0, 256).default(0),
  /** Images per ONNX call: 4–16 suit CPUs, 32–256 GPUs. */
  CLIPMOD_MAX_BATCH_SIZE: integer(1, 1024).default(16),
  /** How long a partial batch waits for more images before it runs. */
  CLIPMOD_MAX_BATCH_WAIT_MS: integer(0, 10_000).default(10),
  /** Jobs one inference worker holds at once; 0 means twice the batch size (one batch runs, one fills). */
  CLIPMOD_WORKER_CONCURRENCY: integer(0, 4096).default(0),
  /**
   * BullMQ lock of inference and webhook jobs (webhooks keep at least twice CLIPMOD_WEBHOOK_TIMEOUT_MS);
   * must exceed the worst batch time or healthy jobs are treated as stalled.
   */
  CLIPMOD_LOCK_DURATION_MS: integer(1_000, 600_000).default(30_000),
  /** exact (bit-equal to Hugging Face CLIPImageProcessor) or fast (sharp resize, shrink-on-load). */
  CLIPMOD_PREPROCESS_MODE: z.enum(['exact', 'fast']).default('exact'),
  /** exif: score the upright image (service default); raw: the stored pixels, as CLIPImageProcessor. */
  CLIPMOD_ORIENTATION: z.enum(['exif', 'raw']).default('exif'),
  /** Frames scored per animated image (first, last and evenly spaced between). */
  CLIPMOD_MAX_FRAMES: integer(1, 64).default(4),
  /** Largest accepted image, in bytes (also bounds request bodies). */
  CLIPMOD_MAX_IMAGE_BYTES: integer(1_024, 200_000_000).default(20_000_000),
  /** Largest accepted image, in pixels (width × height), checked before decoding. */
  CLIPMOD_MAX_IMAGE_PIXELS: integer(1, 1_000_000_000).default(40_000_000),
  /** How long finished moderations stay readable. */
  CLIPMOD_RESULT_TTL_SECONDS: integer(60, 31_536_000).default(604_800),
  /** How long submitted image bytes may wait in Redis before a worker takes them. */
  CLIPMOD_IMAGE_TTL_SECONDS: integer(60, 604_800).default(3_600),
  /** Upper bound of `?wait=MS` on synchronous requests. */
  CLIPMOD_MAX_SYNC_WAIT_MS: integer(0, 300_000).default(30_000),
  /** Delays between webhook attempts (Svix's schedule); one attempt more than entries, then it gives up. */
  CLIPMOD_WEBHOOK_RETRY_SCHEDULE_MS: delayList.default([
    5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
  ]),
  /** One webhook attempt, connect to last response byte; a slower receiver counts as a timeout. */
  CLIPMOD_WEBHOOK_TIMEOUT_MS: integer(100, 120_000).default(15_000),
  /** An endpoint failing without one success for this long is disabled (with an event); 0 never. */
  CLIPMOD_WEBHOOK_DISABLE_AFTER_MS: integer(0, 31_536_000_000).default(432_000_000),
  /** Webhook attempts one worker holds at once (each hostile receiver occupies one until its timeout). */
  CLIPMOD_WEBHOOK_CONCURRENCY: integer(1, 1_000).default(50),
  /** How long webhook event bodies and the delivery log are kept (the replay window). */
  CLIPMOD_WEBHOOK_RETENTION_SECONDS: integer(3_600, 31_536_000).default(604_800),
  /** Seals webhook signing secrets in Redis (AES-256-GCM); unset stores them unencrypted. */
  CLIPMOD_WEBHOOK_SECRET_KEY: z.string().min(32, 'must be at least 32 random characters').optional(),
  /** Test-only crash points (test/chaos); refused when NODE_ENV=production. See shared/runtime. */
  CLIPMOD_FAULT_INJECTION: booleanFlag.default(false),
});

export type Config = Readonly<z.infer<typeof configSchema>>;
