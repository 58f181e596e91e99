import type { Cluster, Redis } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';
import type { PolicyChange } from './policy-diff.ts';

// Reading the policy audit log: Redis streams that PolicyStore's scripts append to in the same atomic
// step as each change, and never trim (an audit log that forgets is no audit log; one entry is a few
// hundred bytes, so even thousands of edits stay small). Stream ids double as the page cursor.

export type PolicyAuditAction = 'put' | 'rollback' | 'candidate' | 'delete' | 'shadow-set' | 'shadow-clear';

export type PolicyAuditEvent = {
  /** The stream entry id (`<ms>-<seq>`): unique, ordered, and the cursor for the next page. */
  id: string;
  at: string;
  /** The API key id (or `cli:…`) that made the change. */
  actor: string;
  action: PolicyAuditAction;
  policy: string;
  /** The version written, deleted, shadowed or no longer shadowed. */
  version: number | null;
  basedOn?: number | null;
  rollbackOf?: number;
  diff?: PolicyChange[];
};

export type AuditPage = {
  data: PolicyAuditEvent[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next: string | null;
};

export const maxAuditPageSize = 500;

const streamIdPattern = /^[0-9]{1,20}-[0-9]{1,20}$/;

/** Newest first, `limit` entries strictly older than `before` (a stream id) when given. */
export async function readAudit(
  redis: Redis | Cluster,
  key: string,
  options: { limit: number; before?: string },
): Promise<AuditPage> {
  if (options.before !== undefined && !streamIdPattern.test(options.before)) {
    throw new ClipmodError('bad_request', 'before must be an audit event id such as 1735787045000-0', {
      details: { errors: [{ path: 'before', message: 'must be an audit event id' }] },
    });
  }
  const limit = Math.max(1, Math.min(maxAuditPageSize, options.limit));
  const end = options.before === undefined ? '+' : `(${options.before}`;
  const entries = (await redis.xrevrange(key, end, '-', 'COUNT', limit)) as [string, string[]][];
  const data = entries.map(([id, fields]) => ({ id, ...parseFields(fields) }));
  const last = data.at(-1);
  return { data, next: data.length === limit && last !== undefined ? last.id : null };
}

function parseFields(fields: readonly string[]): Omit<PolicyAuditEvent, 'id'> {
  const index = fields.indexOf('event');
  const raw = index >= 0 ? fields[index + 1] : undefined;
  return JSON.parse(raw ?? '{}') as Omit<PolicyAuditEvent, 'id'>;
}
