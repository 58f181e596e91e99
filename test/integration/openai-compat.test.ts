import { createServer, type Server } from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { solidImage } from '../helpers/images.ts';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';

// POST /openai/v1/moderations as OpenAI's SDKs send it (JSON, Authorization: Bearer), against the real
// service on the built `color` model. The `openai` package is not installed, so requests are raw fetch.

const colorPolicy = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
};
const greenPolicy = {
  labels: [{ id: 'green', prompts: ['a green image'], threshold: 0.5, action: 'review' }],
  baseline: ['a red image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
};

type Moderation = {
  flagged: boolean;
  categories: Record<string, boolean>;
  category_scores: Record<string, number>;
  category_applied_input_types: Record<string, string[]>;
};
type OpenAiBody = {
  id: string;
  model: string;
  results: Moderation[];
  error: { message: string; type: string; param: string | null; code: string };
};

let service: ServiceHarness;
let redDataUrl = '';
let greenDataUrl = '';
let imageServer: Server;
let imageServerUrl = '';
let imageServerHits = 0;

async function putPolicy(harness: ServiceHarness, id: string, document: object): Promise<void> {
  const put = await harness.request(`/v1/policies/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(document),
  });
  expect(put.status).toBe(201);
}

beforeAll(async () => {
  service = await startService({
    env: { MODEL_DIR: await builtModel('color'), CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8' },
  });
  const red = await solidImage('png', 64, 48, [230, 20, 20]);
  const green = await solidImage('png', 64, 48, [20, 200, 30]);
  redDataUrl = `data:image/png;base64,${Buffer.from(red).toString('base64')}`;
  greenDataUrl = `data:image/png;base64,${Buffer.from(green).toString('base64')}`;
  await putPolicy(service, 'default', colorPolicy);
  await putPolicy(service, 'greens', greenPolicy);
  imageServer = createServer((_req, res) => {
    imageServerHits += 1;
    res.writeHead(200, { 'content-type': 'image/png' }).end(red);
  });
  await new Promise<void>((resolve) => imageServer.listen(0, '127.0.0.1', resolve));
  imageServerUrl = `http://127.0.0.1:${(imageServer.address() as { port: number }).port}/red.png`;
});

afterAll(async () => {
  imageServer?.close();
  await service?.stop();
});

/** As the SDK sends it: POST JSON with a bearer key (the harness adds the admin key). */
async function moderate(body: unknown, harness = service, headers: Record<string, string> = {}) {
  const response = await harness.request('/openai/v1/moderations', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { response, body: (await response.json()) as OpenAiBody };
}

const imagePart = (url: string) => ({ type: 'image_url', image_url: { url } });

describe('OpenAI-compatible moderation', () => {
  it('flags a red data-URL image in a mixed text+image input, keyed by the policy labels', async () => {
    const { response, body } = await moderate({
      model: 'omni-moderation-latest',
      input: [{ type: 'text', text: '...and I want to kill them.' }, imagePart(redDataUrl)],
    });
    expect(response.status).toBe(200);
    expect(body.id).toMatch(/^modr-/);
    expect(body.model).toBe('omni-moderation-latest');
    expect(body.results).toHaveLength(1);
    const [result] = body.results;
    expect(result?.flagged).toBe(true);
    expect(result?.categories).toEqual({ red: true });
    expect(result?.category_scores.red).toBeGreaterThan(0.9);
    expect(result?.category_applied_input_types).toEqual({ red: ['image'] });
    expect(response.headers.get('x-clipmod-warning')).toBe('text inputs are not moderated');
    const [id] = response.headers.get('x-clipmod-moderation-ids')?.split(',') ?? [];
    const native = await service.request(`/v1/moderations/${id}`);
    expect(((await native.json()) as { metadata: object }).metadata).toEqual({ via: 'openai' });
  });

  it('serves the official OpenAI SDK with only its base URL changed', async () => {
    const client = new OpenAI({
      apiKey: service.adminKey,
      baseURL: `${service.baseUrl}/openai/v1`,
      maxRetries: 0,
    });
    const red = await client.moderations.create({
      model: 'omni-moderation-latest',
      input: [imagePart(redDataUrl)] as never,
    });
    expect(red.results[0]?.flagged).toBe(true);
    expect((red.results[0]!.category_scores as unknown as Record<string, number>).red).toBeGreaterThan(0.9);
    const green = await client.moderations.create({
      model: 'omni-moderation-latest',
      input: [imagePart(greenDataUrl)] as never,
    });
    expect(green.results[0]?.flagged).toBe(false);
    const refused = await new OpenAI({
      apiKey: 'wrong-key',
      baseURL: `${service.baseUrl}/openai/v1`,
      maxRetries: 0,
    }).moderations
      .create({ input: 'hello' })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((refused as InstanceType<typeof OpenAI.APIError>).code).toBe('unauthorized');
  });

  it('does not flag a green image, and answers without a warning when there is no text', async () => {
    const { response, body } = await moderate({ input: [imagePart(greenDataUrl)] });
    expect(response.status).toBe(200);
    expect(body.model).toBe('omni-moderation-latest');
    expect(body.results[0]?.flagged).toBe(false);
    expect(body.results[0]?.categories).toEqual({ red: false });
    expect(body.results[0]?.category_scores.red).toBeLessThan(0.1);
    expect(body.results[0]?.category_applied_input_types).toEqual({ red: ['image'] });
    expect(response.headers.get('x-clipmod-warning')).toBeNull();
  });

  it('fetches an http image URL on an allow-listed loopback server', async () => {
    const hitsBefore = imageServerHits;
    const { response, body } = await moderate({
      model: 'omni-moderation-2024-09-26',
      input: [imagePart(imageServerUrl)],
    });
    expect(response.status).toBe(200);
    expect(body.model).toBe('omni-moderation-2024-09-26');
    expect(body.results[0]?.categories.red).toBe(true);
    expect(imageServerHits).toBe(hitsBefore + 1);
  });

  it('reports per label the highest score and any trigger across several images', async () => {
    const { body } = await moderate({ input: [imagePart(greenDataUrl), imagePart(redDataUrl)] });
    expect(body.results).toHaveLength(1);
    expect(body.results[0]?.flagged).toBe(true);
    expect(body.results[0]?.categories.red).toBe(true);
    expect(body.results[0]?.category_scores.red).toBeGreaterThan(0.9);
  });

  it('uses the policy a model name matches, echoing the model', async () => {
    const { body } = await moderate({ model: 'greens', input: [imagePart(greenDataUrl)] });
    expect(body.model).toBe('greens');
    expect(body.results[0]?.flagged).toBe(true);
    expect(body.results[0]?.categories).toEqual({ green: true });
  });

  it('answers a text string with one unflagged result and a warning header', async () => {
    const { response, body } = await moderate({ model: 'text-moderation-latest', input: 'some text' });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-clipmod-warning')).toBe('text inputs are not moderated');
    expect(body.model).toBe('text-moderation-latest');
    expect(body.results).toEqual([
      {
        flagged: false,
        categories: { red: false },
        category_scores: { red: 0 },
        category_applied_input_types: { red: [] },
      },
    ]);
  });

  it('answers an array of strings with one result per string', async () => {
    const { response, body } = await moderate({ input: ['a', 'b'] });
    expect(response.status).toBe(200);
    expect(body.results).toHaveLength(2);
    expect(body.results.every((result) => result.flagged === false)).toBe(true);
    expect(response.headers.get('x-clipmod-moderation-ids')).toBeNull();
  });
});

describe('OpenAI-shaped errors', () => {
  it.each([
    ['no input', { model: 'omni-moderation-latest' }, 'input'],
    ['an empty input array', { input: [] }, 'input'],
    ['an unknown part type', { input: [{ type: 'audio', audio: {} }] }, 'input[0].type'],
    [
      'an image part without a url',
      { input: [{ type: 'image_url', image_url: {} }] },
      'input[0].image_url.url',
    ],
    ['bad base64', { input: [imagePart('data:image/png;base64,iVBOR%%w0K')] }, 'input[0].image_url.url'],
    ['a model that is not a string', { model: 7, input: 'x' }, 'model'],
  ])('answers 400 bad_request for %s', async (_case, request, param) => {
    const { response, body } = await moderate(request);
    expect(response.status).toBe(400);
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'bad_request', param });
    expect(body.error.message).toContain(param);
  });

  it('answers 400 with the position for a body that is not JSON', async () => {
    const { response, body } = await moderate('{"input": [}');
    expect(response.status).toBe(400);
    expect(body.error).toMatchObject({ code: 'bad_request', param: null });
    expect(body.error.message).toMatch(/line 1, column 12/);
  });

  it('names the part when a data URL holds no image', async () => {
    const text = `data:image/png;base64,${Buffer.from('just some text, no image').toString('base64')}`;
    const { response, body } = await moderate({ input: [imagePart(greenDataUrl), imagePart(text)] });
    expect(response.status).toBe(415);
    expect(body.error).toMatchObject({ code: 'unsupported_format', param: 'input[1].image_url.url' });
  });

  it('answers 401 in the OpenAI shape without a key or with a wrong one', async () => {
    for (const authorization of ['', 'Bearer not-a-key']) {
      const { response, body } = await moderate({ input: 'x' }, service, { authorization });
      expect(response.status).toBe(401);
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'unauthorized' });
    }
  });

  it('keeps problem+json on the native routes', async () => {
    const response = await service.request('/v1/moderations', { method: 'POST' });
    expect(response.status).toBe(415);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
  });
});

describe('OpenAI route without an inference worker or a private-network allowance', () => {
  let apiOnly: ServiceHarness;

  beforeAll(async () => {
    apiOnly = await startService({ roles: ['api'], env: { CLIPMOD_MAX_SYNC_WAIT_MS: '300' } });
    await putPolicy(apiOnly, 'default', colorPolicy);
  });

  afterAll(async () => {
    await apiOnly?.stop();
  });

  it('answers 504 timeout once the deployment’s max sync wait passes', async () => {
    const { response, body } = await moderate({ input: [imagePart(redDataUrl)] }, apiOnly);
    expect(response.status).toBe(504);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(body.error).toMatchObject({ type: 'server_error', code: 'timeout' });
    expect(body.error.message).toContain(response.headers.get('x-clipmod-moderation-ids'));
  });

  it('refuses a loopback image URL through the SSRF policy without connecting', async () => {
    const hitsBefore = imageServerHits;
    const { response, body } = await moderate({ input: [imagePart(imageServerUrl)] }, apiOnly);
    expect(response.status).toBe(400);
    expect(body.error).toMatchObject({ code: 'url_forbidden', param: 'input[0].image_url.url' });
    expect(imageServerHits).toBe(hitsBefore);
  });

  it('answers 404 on the model field when the tenant has no policy to use', async () => {
    await apiOnly.request('/v1/policies/default', { method: 'DELETE' });
    const { response, body } = await moderate({ input: [imagePart(redDataUrl)] }, apiOnly);
    expect(response.status).toBe(404);
    expect(body.error).toMatchObject({ code: 'not_found', param: 'model' });
    const text = await moderate({ input: 'still fine' }, apiOnly);
    expect(text.body.results).toEqual([
      { flagged: false, categories: {}, category_scores: {}, category_applied_input_types: {} },
    ]);
  });
});
