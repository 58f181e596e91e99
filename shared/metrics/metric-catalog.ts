// Every metric clipmod defines: name, help, labels and buckets in one place, so code, Grafana
// dashboards and alert rules agree (test/unit/dashboards.test.ts checks every PromQL name against it).
// Names follow Prometheus conventions: snake_case, base units (`_seconds`), `_total` on counters.

type Common = { name: string; help: string; labelNames: readonly string[] };
export type CounterSpec = Common & { type: 'counter' };
export type GaugeSpec = Common & { type: 'gauge' };
export type HistogramSpec = Common & { type: 'histogram'; buckets: readonly number[] };
export type MetricSpec = CounterSpec | GaugeSpec | HistogramSpec;

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Scores are probabilities: finer near 0 and 1, where thresholds usually sit. */
const scoreBuckets = [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1];

/**
 * Distinct (policy, label) pairs one process labels verdict and score metrics with; later pairs are
 * counted under policy="_other", label="_other". Policies are tenant data, so without a cap a tenant
 * creating policies in a loop would create series without bound. Tenants are never a label.
 */
export const maxPolicyLabelSeries = 500;
export const otherSeriesLabel = '_other';

export const metricCatalog = {
  httpRequests: {
    type: 'counter',
    name: 'clipmod_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'],
  },
  httpRequestDuration: {
    type: 'histogram',
    name: 'clipmod_http_request_duration_seconds',
    help: 'HTTP request duration from arrival to the last byte sent, by method and route pattern.',
    labelNames: ['method', 'route'],
    buckets: latencyBuckets,
  },
  queueJobs: {
    type: 'gauge',
    name: 'clipmod_queue_jobs',
    help: 'Jobs in a BullMQ queue by state (waiting, active, delayed, failed, ...), read at scrape time.',
    labelNames: ['queue', 'state'],
  },
  queueWorkers: {
    type: 'gauge',
    name: 'clipmod_queue_workers',
    help: 'Worker connections attached to a queue, read at scrape time (Redis CLIENT LIST).',
    labelNames: ['queue'],
  },
  jobs: {
    type: 'counter',
    name: 'clipmod_jobs_total',
    help: 'Jobs this process finished, by queue, job name and outcome (completed, failed, stalled).',
    labelNames: ['queue', 'name', 'outcome'],
  },
  batchSize: {
    type: 'histogram',
    name: 'clipmod_inference_batch_size',
    help: 'Images per ONNX image-encoder call.',
    labelNames: [],
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
  },
  batchFillRatio: {
    type: 'histogram',
    name: 'clipmod_inference_batch_fill_ratio',
    help: 'Images per ONNX call divided by CLIPMOD_MAX_BATCH_SIZE.',
    labelNames: [],
    buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
  },
  batchDuration: {
    type: 'histogram',
    name: 'clipmod_inference_batch_duration_seconds',
    help: 'Time of one batched image-encoder call, normalisation included.',
    labelNames: [],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  preprocessDuration: {
    type: 'histogram',
    name: 'clipmod_inference_preprocess_duration_seconds',
    help: 'Time to probe, decode and resize one image (all sampled frames) before batching.',
    labelNames: [],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  },
  moderationDuration: {
    type: 'histogram',
    name: 'clipmod_moderation_duration_seconds',
    help: 'Time from submission to a terminal state, by status (completed, failed).',
    labelNames: ['status'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  },
  modelLoad: {
    type: 'gauge',
    name: 'clipmod_model_load_seconds',
    help: 'Time the inference worker took to load the model at start.',
    labelNames: [],
  },
  modelWarmup: {
    type: 'gauge',
    name: 'clipmod_model_warmup_seconds',
    help: 'Time the inference worker took to warm the model up at start.',
    labelNames: [],
  },
  modelInfo: {
    type: 'gauge',
    name: 'clipmod_model_info',
    help: 'Always 1: the model, weight variant and ONNX execution provider this worker runs.',
    labelNames: ['model', 'variant', 'provider'],
  },
  textEmbeddingCache: {
    type: 'counter',
    name: 'clipmod_text_embedding_cache_total',
    help: 'Text-embedding cache lookups by result (hit, miss).',
    labelNames: ['result'],
  },
  verdicts: {
    type: 'counter',
    name: 'clipmod_verdicts_total',
    help: 'Completed moderations by policy id and verdict action.',
    labelNames: ['policy', 'action'],
  },
  labelTriggers: {
    type: 'counter',
    name: 'clipmod_label_triggers_total',
    help: 'Policy labels that reached their threshold, by policy id, label id and the label action.',
    labelNames: ['policy', 'label', 'action'],
  },
  labelScore: {
    type: 'histogram',
    name: 'clipmod_label_score',
    help: 'Score of every policy label on every completed moderation, to see drift after a model or policy change.',
    labelNames: ['policy', 'label'],
    buckets: scoreBuckets,
  },
  webhookAttempts: {
    type: 'counter',
    name: 'clipmod_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome: delivered, or the error class of a failure (server_error, timeout, ...).',
    labelNames: ['outcome'],
  },
  webhookAttemptDuration: {
    type: 'histogram',
    name: 'clipmod_webhook_attempt_duration_seconds',
    help: 'Time of one webhook delivery attempt, connect to last response byte read.',
    labelNames: [],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
  },
  webhookEndpointsDisabled: {
    type: 'counter',
    name: 'clipmod_webhook_endpoints_disabled_total',
    help: 'Endpoints disabled by the webhook worker, by reason: gone (HTTP 410) or failing for the whole window.',
    labelNames: ['reason'],
  },
  redisConnected: {
    type: 'gauge',
    name: 'clipmod_redis_connected',
    help: '1 while a named Redis connection of this process is ready, else 0.',
    labelNames: ['connection'],
  },
  redisMaxmemoryPolicy: {
    type: 'gauge',
    name: 'clipmod_redis_maxmemory_policy_info',
    help: 'Always 1: the Redis maxmemory-policy, read at scrape time (queues need noeviction).',
    labelNames: ['policy'],
  },
} as const satisfies Record<string, MetricSpec>;

export type MetricCatalog = typeof metricCatalog;
