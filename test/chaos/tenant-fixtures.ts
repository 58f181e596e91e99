import { solidImage } from '../helpers/images.ts';
import type { ServiceHarness } from '../helpers/service-harness.ts';
import { type Receiver, waitUntil } from '../helpers/webhook-receiver.ts';

// Two tenants on one running service, with one of every resource owned by tenant A: the starting
// point of the authorization matrix and the tenant-isolation checks.

export const colorPolicy = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  baseline: ['a green image', 'a blue image', 'a yellow image', 'a black image', 'a white image'],
};

export type Keys = {
  /** Tenant A, scopes admin + moderate: the owner of every resource below. */
  ownerAdmin: string;
  /** Tenant A, moderate only. */
  moderateOnly: string;
  /** Tenant B, scopes admin + moderate. */
  otherAdmin: string;
};

export type TenantResources = {
  keys: Keys;
  /** Ids of tenant A's resources, by the route parameter they fill. */
  ids: {
    policy: string;
    label: string;
    moderation: string;
    bankEntry: string;
    endpoint: string;
    delivery: string;
    /** A tenant-A key that DELETE /v1/api-keys/:id may revoke. */
    spareKey: string;
  };
  /** Secrets created during setup (API keys and the webhook secret) that must never be logged. */
  secrets: string[];
  red: Uint8Array;
};

type Call = (path: string, init?: RequestInit) => Promise<Record<string, any>>;

/** Calls as `key` and returns the JSON body; any non-2xx fails setup loudly. */
function caller(service: ServiceHarness, key: string): Call {
  return async (path, init = {}) => {
    const response = await service.request(path, {
      ...init,
      headers: { authorization: `Bearer ${key}`, ...(init.headers as Record<string, string>) },
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path} → ${response.status} ${text}`);
    return text === '' ? {} : (JSON.parse(text) as Record<string, any>);
  };
}

export const jsonInit = (method: string, body: unknown): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export function imageForm(image: Uint8Array, fields: Record<string, string> = {}): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  form.append('image', new Blob([image]), 'upload.png');
  return form;
}

async function createKeys(service: ServiceHarness) {
  const bootstrap = caller(service, service.adminKey);
  const make = (tenant: string, scopes: string[]) =>
    bootstrap('/v1/api-keys', jsonInit('POST', { tenant, name: `${tenant}-${scopes.join('+')}`, scopes }));
  const [ownerAdmin, moderateOnly, otherAdmin, spare] = await Promise.all([
    make('tenant-a', ['admin', 'moderate']),
    make('tenant-a', ['moderate']),
    make('tenant-b', ['admin', 'moderate']),
    make('tenant-a', ['moderate']),
  ]);
  const keys = { ownerAdmin: ownerAdmin.key, moderateOnly: moderateOnly.key, otherAdmin: otherAdmin.key };
  return { keys, spareKey: spare.id as string, secrets: [...Object.values(keys), spare.key as string] };
}

/** Creates the keys and tenant A's resources; needs the api, inference and webhooks roles. */
export async function createTenantResources(
  service: ServiceHarness,
  receiver: Receiver,
): Promise<TenantResources> {
  const { keys, spareKey, secrets } = await createKeys(service);
  const owner = caller(service, keys.ownerAdmin);
  const red = await solidImage('png', 64, 48, [230, 20, 20]);
  await owner('/v1/policies/pa', jsonInit('PUT', colorPolicy));
  await owner('/v1/tenant-settings', jsonInit('PUT', { retention: { enabled: true, ttlSeconds: 3600 } }));
  const endpoint = await owner('/v1/webhook-endpoints', jsonInit('POST', { url: receiver.url('/a') }));
  const bank = await owner('/v1/policies/pa/labels/red/bank', { method: 'POST', body: imageForm(red) });
  const moderation = await owner('/v1/moderations?wait=20000', {
    method: 'POST',
    body: imageForm(red, { policy: 'pa' }),
  });
  const delivery = await waitUntil(
    'a webhook delivery of tenant A',
    async () => {
      const page = await owner(`/v1/webhook-endpoints/${endpoint.id}/deliveries`);
      return page.data?.[0]?.id as string | undefined;
    },
    20_000,
  );
  return {
    keys,
    ids: {
      policy: 'pa',
      label: 'red',
      moderation: moderation.id,
      bankEntry: bank.id,
      endpoint: endpoint.id,
      delivery,
      spareKey,
    },
    secrets: [...secrets, endpoint.secret as string],
    red,
  };
}
