import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { type Receiver, startReceiver, waitUntil } from '../helpers/webhook-receiver.ts';

// One moderation followed across processes by its request id: the API's access line, the job, the
// stored record, the inference worker's line, the webhook worker's attempt line and the webhook body
// all carry the same `requestId`.

type LogLine = Record<string, any>;

function logCapture() {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text));
      done();
    },
  });
  return { lines, destination };
}

const apiLog = logCapture();
const workerLog = logCapture();
const webhookLog = logCapture();
let api: ServiceHarness;
let worker: ServiceHarness;
let webhooks: ServiceHarness;
let receiver: Receiver;
let red: Uint8Array;

beforeAll(async () => {
  const env = {
    LOG_LEVEL: 'info',
    CLIPMOD_PROBE_PORT: '0',
    CLIPMOD_EXECUTION_PROVIDER: 'cpu',
    CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
  };
  receiver = await startReceiver();
  api = await startService({ roles: ['api'], env, logDestination: apiLog.destination });
  worker = await startService({
    roles: ['inference'],
    prefix: api.prefix,
    env: { ...env, MODEL_DIR: await builtModel('color') },
    logDestination: workerLog.destination,
  });
  webhooks = await startService({
    roles: ['webhooks'],
    prefix: api.prefix,
    env,
    logDestination: webhookLog.destination,
  });
  const endpoint = await api.request('/v1/webhook-endpoints', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: receiver.url('/hooks') }),
  });
  expect(endpoint.status).toBe(201);
  const put = await api.request('/v1/policies/default', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
      baseline: ['a green image', 'a blue image'],
    }),
  });
  expect(put.status).toBe(201);
  red = await solidImage('png', 32, 32, [230, 20, 20]);
});

afterAll(async () => {
  await webhooks?.stop();
  await worker?.stop();
  await api?.stop();
  await receiver?.stop();
});

async function submit(headers: Record<string, string> = {}) {
  const response = await api.request('/v1/moderations?wait=20000', {
    method: 'POST',
    headers: { 'content-type': 'image/png', ...headers },
    body: red,
  });
  expect(response.status).toBe(200);
  return { requestId: response.headers.get('x-request-id'), body: (await response.json()) as LogLine };
}

/** Log lines are written asynchronously: wait until one matches. */
async function lineMatching(lines: LogLine[], predicate: (line: LogLine) => boolean): Promise<LogLine> {
  for (let waited = 0; waited < 5_000; waited += 20) {
    const found = lines.find(predicate);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('no matching log line within 5 s');
}

describe('request ids across processes', () => {
  it('follows a client-supplied x-request-id from the API line to the worker line', async () => {
    const { requestId, body } = await submit({ 'x-request-id': 'upload-42.attempt:1' });
    expect(requestId).toBe('upload-42.attempt:1');
    const apiLine = await lineMatching(
      apiLog.lines,
      (line) => line.requestId === requestId && line.msg === 'request',
    );
    expect(apiLine).toMatchObject({
      method: 'POST',
      route: '/v1/moderations',
      status: 200,
      moderationId: body.id,
    });
    const workerLine = await lineMatching(workerLog.lines, (line) => line.requestId === requestId);
    expect(workerLine).toMatchObject({
      msg: 'moderation finished',
      moderationId: body.id,
      status: 'completed',
      action: 'block',
    });
    expect(body.requestId).toBe(requestId);
  });

  it('follows the request id to the webhook attempt line and into the webhook body', async () => {
    const { requestId, body } = await submit({ 'x-request-id': 'webhook-trace-7' });
    const attemptLine = await lineMatching(webhookLog.lines, (line) => line.requestId === requestId);
    expect(attemptLine).toMatchObject({
      msg: 'webhook attempt',
      moderationId: body.id,
      outcome: 'delivered',
      httpStatus: 200,
    });
    const delivered = await waitUntil('the moderation webhook', () =>
      receiver.requests.find((request) => JSON.parse(request.body.toString('utf8')).data?.id === body.id),
    );
    expect(JSON.parse(delivered.body.toString('utf8')).data.requestId).toBe(requestId);
  });

  it('carries the request id in the job data', async () => {
    const { requestId, body } = await submit({ 'x-request-id': 'job-data-check' });
    const job = await api.redis.hget(`${api.prefix}:inference:${body.id}`, 'data');
    expect(JSON.parse(job ?? '{}')).toMatchObject({ moderationId: body.id, requestId });
  });

  it('generates a UUID when the client sends none, or one unsafe to echo', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const none = await submit();
    const unsafe = await submit({ 'x-request-id': 'has spaces\tand "quotes"' });
    const tooLong = await submit({ 'x-request-id': 'x'.repeat(129) });
    for (const { requestId } of [none, unsafe, tooLong]) expect(requestId).toMatch(uuid);
    expect(new Set([none.requestId, unsafe.requestId, tooLong.requestId]).size).toBe(3);
    const workerLine = await lineMatching(workerLog.lines, (line) => line.requestId === none.requestId);
    expect(workerLine.moderationId).toBe(none.body.id);
  });

  it('keeps probe and scrape requests out of the info log', async () => {
    const metrics = await fetch(api.metricsUrl, { headers: { 'x-request-id': 'scrape-1' } });
    expect(metrics.headers.get('x-request-id')).toBe('scrape-1');
    await submit({ 'x-request-id': 'after-scrape' });
    await lineMatching(apiLog.lines, (line) => line.requestId === 'after-scrape');
    expect(apiLog.lines.some((line) => line.requestId === 'scrape-1')).toBe(false);
  });
});
