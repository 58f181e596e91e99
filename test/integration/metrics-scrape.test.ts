import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { hasPromtool, promtool, promtoolMissing, type Sample, scrape, sumOf } from '../helpers/prometheus.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { type Receiver, startReceiver, waitUntil } from '../helpers/webhook-receiver.ts';

// Each role as its own "process" (own registry, own /metrics) of one deployment, after real traffic:
// `promtool check metrics` must accept every scrape, and the counters that traffic moves must move.

const colorPolicy = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image'],
};

let api: ServiceHarness;
let inference: ServiceHarness;
let webhooks: ServiceHarness;
let receiver: Receiver;
type Scrape = { text: string; samples: Sample[] };
let apiScrape: Scrape;
let inferenceScrape: Scrape;
let webhooksScrape: Scrape;

beforeAll(async () => {
  if (!hasPromtool) console.warn(promtoolMissing);
  receiver = await startReceiver();
  const env = {
    CLIPMOD_PROBE_PORT: '0',
    CLIPMOD_EXECUTION_PROVIDER: 'cpu',
    CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
  };
  api = await startService({ roles: ['api'], env });
  inference = await startService({
    roles: ['inference'],
    prefix: api.prefix,
    env: { ...env, MODEL_DIR: await builtModel('color'), CLIPMOD_MAX_BATCH_SIZE: '4' },
  });
  webhooks = await startService({ roles: ['webhooks'], prefix: api.prefix, env });
  const endpoint = await api.request('/v1/webhook-endpoints', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url('/hooks') }),
  });
  expect(endpoint.status).toBe(201);
  const put = await api.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(colorPolicy),
  });
  expect(put.status).toBe(201);
  const colours: [number, number, number][] = [[230, 20, 20], [20, 200, 30], [230, 20, 20]]; // biome-ignore format: one colour per moderation
  for (const rgb of colours) {
    const response = await api.request('/v1/moderations?wait=20000', {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: await solidImage('png', 32, 32, rgb),
    });
    expect(response.status).toBe(200);
  }
  expect((await api.request('/v1/moderations/nope-nope-nope')).status).toBe(404);
  await waitUntil('three webhook deliveries', () => receiver.requests.length >= 3);
  // The worker counts an attempt once the receiver's answer is read, and the job once it is acknowledged.
  const delivered = { queue: 'webhooks', name: 'webhook.deliver', outcome: 'completed' };
  await waitUntil('three attempts and three delivery jobs counted', async () => {
    webhooksScrape = await scrape(webhooks.metricsUrl);
    const { samples } = webhooksScrape;
    return (
      sumOf(samples, 'clipmod_webhook_attempts_total') >= 3 &&
      sumOf(samples, 'clipmod_jobs_total', delivered) >= 3
    );
  });
  // A synchronous answer can arrive a moment before the worker's own `completed` event.
  const moderated = { queue: 'inference', name: 'moderation.run', outcome: 'completed' };
  await waitUntil('three moderation jobs counted', async () => {
    inferenceScrape = await scrape(inference.metricsUrl);
    return sumOf(inferenceScrape.samples, 'clipmod_jobs_total', moderated) >= 3;
  });
  apiScrape = await scrape(api.metricsUrl);
});

afterAll(async () => {
  await webhooks?.stop();
  await inference?.stop();
  await api?.stop();
  await receiver?.stop();
});

describe('live /metrics of the api role', () => {
  it.skipIf(!hasPromtool)('passes promtool check metrics', () => {
    const { status, output } = promtool(['check', 'metrics'], apiScrape.text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('counts requests by route pattern and status, never by raw path', () => {
    const { samples } = apiScrape;
    const route = '/v1/moderations';
    expect(sumOf(samples, 'clipmod_http_requests_total', { route, method: 'POST', status: '200' })).toBe(3);
    expect(
      sumOf(samples, 'clipmod_http_requests_total', { route: '/v1/moderations/:id', status: '404' }),
    ).toBe(1);
    expect(sumOf(samples, 'clipmod_http_request_duration_seconds_count', { route })).toBe(3);
    expect(samples.some((sample) => sample.labels.route?.includes('nope'))).toBe(false);
  });

  it('labels every series with the role and serves default process metrics', () => {
    expect(apiScrape.samples.every((sample) => sample.labels.role === 'api')).toBe(true);
    expect(sumOf(apiScrape.samples, 'clipmod_process_cpu_seconds_total')).toBeGreaterThan(0);
  });
});

describe('live /metrics of the inference role', () => {
  it.skipIf(!hasPromtool)('passes promtool check metrics', () => {
    const { status, output } = promtool(['check', 'metrics'], inferenceScrape.text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('counts jobs, batches, preprocessing and the text-embedding cache', () => {
    const { samples } = inferenceScrape;
    const completed = { queue: 'inference', name: 'moderation.run', outcome: 'completed' };
    expect(sumOf(samples, 'clipmod_jobs_total', completed)).toBe(3);
    expect(sumOf(samples, 'clipmod_inference_batch_size_sum')).toBe(3);
    expect(sumOf(samples, 'clipmod_inference_batch_fill_ratio_count')).toBeGreaterThanOrEqual(1);
    expect(sumOf(samples, 'clipmod_inference_batch_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(sumOf(samples, 'clipmod_inference_preprocess_duration_seconds_count')).toBe(3);
    expect(sumOf(samples, 'clipmod_moderation_duration_seconds_count', { status: 'completed' })).toBe(3);
    expect(sumOf(samples, 'clipmod_text_embedding_cache_total', { result: 'miss' })).toBeGreaterThan(0);
  });

  it('counts verdicts by policy and action, label triggers, and every label score', () => {
    const { samples } = inferenceScrape;
    expect(sumOf(samples, 'clipmod_verdicts_total', { policy: 'default', action: 'block' })).toBe(2);
    expect(sumOf(samples, 'clipmod_verdicts_total', { policy: 'default', action: 'allow' })).toBe(1);
    const red = { policy: 'default', label: 'red' };
    expect(sumOf(samples, 'clipmod_label_triggers_total', { ...red, action: 'block' })).toBe(2);
    expect(sumOf(samples, 'clipmod_label_score_count', red)).toBe(3);
    expect(sumOf(samples, 'clipmod_label_score_bucket', { ...red, le: '0.1' })).toBe(1);
  });

  it('names the model and execution provider, with load and warm-up times', () => {
    const info = inferenceScrape.samples.find((sample) => sample.name === 'clipmod_model_info');
    expect(info?.labels).toMatchObject({ provider: 'cpu', variant: 'fp32' });
    expect(info?.value).toBe(1);
    expect(sumOf(inferenceScrape.samples, 'clipmod_model_load_seconds')).toBeGreaterThan(0);
    expect(sumOf(inferenceScrape.samples, 'clipmod_model_warmup_seconds')).toBeGreaterThan(0);
  });
});

describe('live /metrics of the webhooks role', () => {
  it.skipIf(!hasPromtool)('passes promtool check metrics', () => {
    const { status, output } = promtool(['check', 'metrics'], webhooksScrape.text);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('counts delivery attempts by outcome, their latency, and the delivery jobs', () => {
    const { samples } = webhooksScrape;
    expect(sumOf(samples, 'clipmod_webhook_attempts_total', { outcome: 'delivered' })).toBe(3);
    expect(sumOf(samples, 'clipmod_webhook_attempt_duration_seconds_count')).toBe(3);
    const completed = { queue: 'webhooks', name: 'webhook.deliver', outcome: 'completed' };
    expect(sumOf(samples, 'clipmod_jobs_total', completed)).toBeGreaterThanOrEqual(3);
    expect(samples.every((sample) => sample.labels.role === 'webhooks')).toBe(true);
  });
});

describe('queue and Redis metrics in every process', () => {
  it('reports depth by state for every queue of the catalog, and the attached workers', () => {
    for (const { samples } of [apiScrape, inferenceScrape, webhooksScrape]) {
      const depth = samples.filter((sample) => sample.name === 'clipmod_queue_jobs');
      expect([...new Set(depth.map((sample) => sample.labels.queue))].sort()).toEqual([
        'inference',
        'webhooks',
      ]);
      expect(sumOf(samples, 'clipmod_queue_jobs', { queue: 'inference', state: 'waiting' })).toBe(0);
      expect(sumOf(samples, 'clipmod_queue_workers', { queue: 'inference' })).toBeGreaterThanOrEqual(1);
      expect(sumOf(samples, 'clipmod_queue_workers', { queue: 'webhooks' })).toBeGreaterThanOrEqual(1);
    }
  });

  it('reports each Redis connection ready and the noeviction policy', () => {
    const connected = (scraped: Scrape) =>
      scraped.samples
        .filter((sample) => sample.name === 'clipmod_redis_connected')
        .map((sample) => [sample.labels.connection, sample.value]);
    expect(connected(apiScrape)).toEqual(
      expect.arrayContaining([
        ['main', 1],
        ['api-events', 1],
      ]),
    );
    expect(connected(inferenceScrape)).toEqual(
      expect.arrayContaining([
        ['main', 1],
        ['inference', 1],
      ]),
    );
    expect(connected(webhooksScrape)).toEqual(
      expect.arrayContaining([
        ['main', 1],
        ['webhooks', 1],
      ]),
    );
    for (const { samples } of [apiScrape, inferenceScrape, webhooksScrape]) {
      expect(sumOf(samples, 'clipmod_redis_maxmemory_policy_info', { policy: 'noeviction' })).toBe(1);
    }
  });
});
