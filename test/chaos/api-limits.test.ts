import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtModel } from '../helpers/models.ts';
import { type ServiceHarness, startService } from '../helpers/service-harness.ts';
import { type Receiver, startReceiver, waitUntil } from '../helpers/webhook-receiver.ts';
import { sized } from './chaos-deployment.ts';
import {
  colorPolicy,
  createTenantResources,
  imageForm,
  jsonInit,
  type TenantResources,
} from './tenant-fixtures.ts';

// RELIABILITY A3–A6 through the real service: the per-key rate limit under concurrent load, body
// limits of every intake (multipart, raw, JSON), the audit trail of admin changes, and no key or
// secret in any log line or rendered output. The log is captured at debug level for the whole run.

const maxImageBytes = 200_000;
const burst = 20;

let service: ServiceHarness;
let receiver: Receiver;
let fixtures: TenantResources;
const logLines: string[] = [];

beforeAll(async () => {
  const logs = new PassThrough();
  logs.on('data', (chunk: Buffer) => logLines.push(chunk.toString('utf8')));
  receiver = await startReceiver();
  service = await startService({
    roles: ['api', 'inference', 'webhooks'],
    logDestination: logs,
    env: {
      LOG_LEVEL: 'debug',
      MODEL_DIR: await builtModel('color'),
      CLIPMOD_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
      CLIPMOD_RATE_LIMIT_PER_MINUTE: '60',
      CLIPMOD_RATE_LIMIT_BURST: String(burst),
      CLIPMOD_MAX_IMAGE_BYTES: String(maxImageBytes),
    },
  });
  fixtures = await createTenantResources(service, receiver);
});

afterAll(async () => {
  await service?.stop();
  await receiver?.stop();
});

const as = (key: string, path: string, init: RequestInit = {}) =>
  service.request(path, {
    ...init,
    headers: { authorization: `Bearer ${key}`, ...(init.headers as Record<string, string>) },
  });

describe('rate limit under concurrent load (A3)', () => {
  it('answers only 202 or 429 with Retry-After, never 500, and limits per key', async () => {
    const count = sized(60, 600);
    const started = Date.now();
    const responses = await Promise.all(
      Array.from({ length: count }, () =>
        as(fixtures.keys.moderateOnly, '/v1/moderations', {
          method: 'POST',
          body: imageForm(fixtures.red, { policy: 'pa' }),
        }),
      ),
    );
    const elapsedSeconds = (Date.now() - started) / 1000;
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status !== 202 && status !== 429)).toEqual([]);
    const accepted = statuses.filter((status) => status === 202).length;
    expect(accepted).toBeGreaterThanOrEqual(burst);
    expect(accepted).toBeLessThanOrEqual(burst + Math.ceil(elapsedSeconds) + 1);
    for (const response of responses.filter((candidate) => candidate.status === 429)) {
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await response.json()) as { code: string }).code).toBe('rate_limited');
    }
    // Another key of the same tenant has its own bucket.
    const other = await as(fixtures.keys.ownerAdmin, '/v1/moderations', {
      method: 'POST',
      body: imageForm(fixtures.red, { policy: 'pa' }),
    });
    expect(other.status).toBe(202);
  });
});

describe('body limits (A4)', () => {
  // A real PNG head (so format sniffing passes) padded past the byte limit.
  const big = new Uint8Array(maxImageBytes + 1);
  beforeAll(() => big.set(fixtures.red));
  const owner = () => fixtures.keys.ownerAdmin;
  const problemOf = async (response: Response) => ({
    status: response.status,
    code: ((await response.json()) as { code: string }).code,
  });

  it('refuses an image over the byte limit as multipart, raw body and base64 JSON with 413', async () => {
    const multipart = await as(owner(), '/v1/moderations', { method: 'POST', body: imageForm(big) });
    const raw = await as(owner(), '/v1/moderations', {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: big,
    });
    const json = await as(
      owner(),
      '/v1/moderations',
      jsonInit('POST', { image: { base64: Buffer.from(big).toString('base64') } }),
    );
    for (const response of [multipart, raw, json]) {
      expect((await problemOf(response)).status).toBe(413);
    }
  });

  it('refuses oversized form fields and too many fields with 413', async () => {
    const hugeField = imageForm(fixtures.red, { metadata: JSON.stringify({ text: 'x'.repeat(200_000) }) });
    const manyFields = imageForm(fixtures.red);
    for (let index = 0; index < 2_000; index++) manyFields.append(`f${index}`, 'v');
    for (const body of [hugeField, manyFields]) {
      const response = await as(owner(), '/v1/moderations', { method: 'POST', body });
      expect(await problemOf(response)).toEqual({ status: 413, code: 'payload_too_large' });
    }
  });

  it('refuses JSON bodies over each admin route limit with 413 payload_too_large', async () => {
    const filler = 'x'.repeat(300_000);
    const cases: [string, string, unknown][] = [
      ['PUT', '/v1/policies/pa', { ...colorPolicy, description: filler }],
      ['POST', '/v1/api-keys', { name: filler, scopes: ['moderate'] }],
      ['POST', '/v1/webhook-endpoints', { url: receiver.url('/x'), description: filler }],
      ['PUT', '/v1/tenant-settings', { filler }],
    ];
    for (const [method, path, body] of cases) {
      const response = await as(owner(), path, jsonInit(method, body));
      expect({ path, ...(await problemOf(response)) }).toEqual({
        path,
        status: 413,
        code: 'payload_too_large',
      });
    }
    expect((await service.request('/livez')).status).toBe(200);
  });
});

describe('audit trail of admin changes (A5)', () => {
  it('records who changed a policy, how, and when, for every kind of change', async () => {
    const owner = fixtures.keys.ownerAdmin;
    await as(owner, '/v1/policies/audited', jsonInit('PUT', colorPolicy));
    const changed = { ...colorPolicy, labels: [{ ...colorPolicy.labels[0], threshold: 0.6 }] };
    await as(owner, '/v1/policies/audited', jsonInit('PUT', changed));
    expect((await as(owner, '/v1/policies/audited/rollback', jsonInit('POST', { version: 1 }))).status).toBe(
      200,
    );
    expect((await as(owner, '/v1/policies/audited', { method: 'DELETE' })).status).toBe(204);
    const audit = (await (await as(owner, '/v1/policies/audited/audit')).json()) as {
      data: Record<string, unknown>[];
    };
    expect(audit.data).toHaveLength(4);
    const ownerKeyId = await keyIdOf(owner);
    for (const entry of audit.data) expect(JSON.stringify(entry)).toContain(ownerKeyId);
    // Another tenant sees none of it.
    const other = (await (await as(fixtures.keys.otherAdmin, '/v1/policy-audit')).json()) as {
      data: unknown[];
    };
    expect(JSON.stringify(other.data)).not.toContain('audited');
  });
});

/** The id of the key `key` (the audit names keys by id, never by secret). */
async function keyIdOf(key: string): Promise<string> {
  const listed = (await (await service.request('/v1/api-keys?tenant=tenant-a')).json()) as {
    data: { id: string; name: string }[];
  };
  expect(key).toBe(fixtures.keys.ownerAdmin);
  return listed.data.find((record) => record.name === 'tenant-a-admin+moderate')!.id;
}

describe('no secret in logs or rendered output (A6)', () => {
  it('never writes the admin key, API keys or webhook secrets to the log, /metrics or /readyz', async () => {
    // Exercise the paths that handle secrets: rotation, a failed sign-in, a bad bearer.
    const rotated = (await (
      await as(
        fixtures.keys.ownerAdmin,
        `/v1/webhook-endpoints/${fixtures.ids.endpoint}/rotate-secret`,
        jsonInit('POST', {}),
      )
    ).json()) as { secret: string };
    await as(`${fixtures.keys.moderateOnly}x`, '/v1/moderations', { method: 'POST' });
    await fetch(`${service.baseUrl}/admin/session`, jsonInit('POST', { key: fixtures.keys.moderateOnly }));
    await waitUntil('a delivery after rotation', () => receiver.requests.length > 0);
    const rendered = [
      await (await service.request('/metrics')).text(),
      await (await service.request('/readyz')).text(),
    ];
    const secrets = [service.adminKey, ...fixtures.secrets, rotated.secret];
    const everything = [...logLines, ...rendered].join('\n');
    expect(logLines.length).toBeGreaterThan(10);
    expect(secrets.filter((secret) => everything.includes(secret))).toEqual([]);
    expect(everything).not.toMatch(/whsec_[A-Za-z0-9+/=]{8,}/);
    expect(everything).not.toMatch(/cm_[A-Za-z0-9_-]{43}/);
  });
});
