import { createHash } from 'node:crypto';
import { compareStreamIds } from '../../shared/audit/index.ts';
import type { ServiceHarness } from './service-harness.ts';

// Calls a running service as one API key or another and reads what each call appended to a tenant's
// audit log (GET /v1/audit), so a test can say "this change wrote exactly these events".

export type Key = { id: string; key: string; tenant: string };

export type CallResult = { status: number; body: any; text: string };

/** The events (oldest first) the call appended to the log of `logOf` (by default the caller's tenant). */
export type ChangeResult = CallResult & { events: any[] };

export type AuditClient = {
  /** The deployment's bootstrap key (tenant `default`). */
  bootstrap: Key;
  /** A new key of `tenant`, issued by the bootstrap key and named after the tenant. */
  issue(tenant: string, scopes: string[]): Promise<Key>;
  call(as: Key, method: string, path: string, body?: unknown): Promise<CallResult>;
  change(
    as: Key,
    method: string,
    path: string,
    body?: unknown,
    options?: { logOf?: Key },
  ): Promise<ChangeResult>;
  /** The newest event id of the tenant's log, '0-0' when it is empty. */
  head(as: Key): Promise<string>;
  /** The tenant's events newer than `head`, oldest first. */
  eventsAfter(as: Key, head: string): Promise<any[]>;
  /** Every admin audit stream of the deployment, straight from Redis, as one JSON text. */
  rawStreams(): Promise<string>;
};

export function auditClient(service: ServiceHarness): AuditClient {
  const bootstrap: Key = { id: 'bootstrap', key: service.adminKey, tenant: 'default' };
  const call: AuditClient['call'] = async (as, method, path, body) => {
    const response = await fetch(`${service.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${as.key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined, text };
  };
  const newest = async (as: Key) => {
    const log = await call(as, 'GET', '/v1/audit?limit=500');
    if (log.status !== 200) throw new Error(`GET /v1/audit → ${log.status} ${log.text}`);
    return log.body.data as any[];
  };
  const head = async (as: Key) => (await newest(as))[0]?.id ?? '0-0';
  const eventsAfter = async (as: Key, mark: string) =>
    (await newest(as)).filter((event) => compareStreamIds(event.id, mark) > 0).reverse();
  return {
    bootstrap,
    call,
    head,
    eventsAfter,
    async issue(tenant, scopes) {
      const created = await call(bootstrap, 'POST', '/v1/api-keys', { name: tenant, scopes, tenant });
      if (created.status !== 201) throw new Error(`issuing a key → ${created.status} ${created.text}`);
      return { id: created.body.id, key: created.body.key, tenant };
    },
    async change(as, method, path, body, options = {}) {
      const logOf = options.logOf ?? as;
      const mark = await head(logOf);
      const result = await call(as, method, path, body);
      return { ...result, events: await eventsAfter(logOf, mark) };
    },
    async rawStreams() {
      const keys = await service.redis.keys(`${service.prefix}:admin-audit:*`);
      const streams = await Promise.all(keys.map((key) => service.redis.xrange(key, '-', '+')));
      return JSON.stringify(streams);
    },
  };
}

/** Each secret, and its SHA-256 in hex and base64: none of them may appear in an audit log. */
export function secretsOf(secrets: readonly string[]): string[] {
  return secrets.flatMap((secret) => {
    const digest = createHash('sha256').update(secret, 'utf8').digest();
    return [secret, digest.toString('hex'), digest.toString('base64'), digest.toString('base64url')];
  });
}
