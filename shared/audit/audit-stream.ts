import type { Cluster, Redis } from 'ioredis';
import { ClipmodError } from '../errors/index.ts';

// Reading audit logs: Redis streams that are appended to and never trimmed (an audit log that forgets
// is no audit log; one entry is a few hundred bytes). Each entry holds one field, `event`, a JSON
// object. Stream ids (`<ms>-<seq>`) are unique and ordered within a stream and double as the page
// cursor: a page is the newest `limit` entries strictly older than `before`.

export type AuditPage<T> = {
  data: T[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next: string | null;
};

export const maxAuditPageSize = 500;

/** A filtered page stops after this many entries, so a rare filter costs bounded work per request. */
const maxScannedPerPage = 5_000;

const streamIdPattern = /^[0-9]{1,20}-[0-9]{1,20}$/;

export type AuditReadOptions<T> = {
  limit: number;
  before?: string | undefined;
  /** Keeps only matching events; a page may then hold fewer than `limit` and still have a `next`. */
  matches?: ((event: T) => boolean) | undefined;
};

/** Newest first, at most `limit` events strictly older than `before` (a stream id) when given. */
export async function readAuditStream<T extends { id: string }>(
  redis: Redis | Cluster,
  key: string,
  options: AuditReadOptions<T>,
): Promise<AuditPage<T>> {
  const limit = Math.max(1, Math.min(maxAuditPageSize, options.limit));
  const matches = options.matches ?? (() => true);
  const batchSize = options.matches === undefined ? limit : maxAuditPageSize;
  const data: T[] = [];
  let end = options.before === undefined ? '+' : `(${checkCursor(options.before)}`;
  for (let scanned = 0; ; ) {
    const entries = (await redis.xrevrange(key, end, '-', 'COUNT', batchSize)) as [string, string[]][];
    for (const [id, fields] of entries) {
      const event = { id, ...parseEvent(fields) } as T;
      if (!matches(event)) continue;
      data.push(event);
      if (data.length === limit) return { data, next: id };
    }
    const last = entries.at(-1)?.[0];
    if (last === undefined || entries.length < batchSize) return { data, next: null };
    scanned += entries.length;
    if (scanned >= maxScannedPerPage) return { data, next: last };
    end = `(${last}`;
  }
}

/**
 * One page across several streams, from pages each read with the same `limit` and `before`. Below the
 * highest `next`, some stream is still unread, so nothing there is shown yet (it comes on a later page).
 * Two streams can hold the same id (same millisecond): a page never ends between them, since `before`
 * would then skip the second, so it may hold a few more than `limit`.
 */
export function mergeAuditPages<T extends { id: string }>(
  pages: readonly AuditPage<T>[],
  limit: number,
): AuditPage<T> {
  const floor = pages
    .flatMap((page) => (page.next === null ? [] : [page.next]))
    .sort(compareStreamIds)
    .at(-1);
  const known = pages
    .flatMap((page) => page.data)
    .filter((event) => floor === undefined || compareStreamIds(event.id, floor) >= 0)
    .sort((a, b) => compareStreamIds(b.id, a.id));
  let end = Math.min(Math.max(1, limit), known.length);
  while (end < known.length && known[end]!.id === known[end - 1]!.id) end += 1;
  const data = known.slice(0, end);
  const next = end < known.length ? data.at(-1)!.id : (floor ?? null);
  return { data, next };
}

/** Orders `<ms>-<seq>` stream ids as Redis does. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number);
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number);
  return aMs - bMs || aSeq - bSeq;
}

function checkCursor(before: string): string {
  if (streamIdPattern.test(before)) return before;
  throw new ClipmodError('bad_request', 'before must be an audit event id such as 1735787045000-0', {
    details: { errors: [{ path: 'before', message: 'must be an audit event id' }] },
  });
}

function parseEvent(fields: readonly string[]): Record<string, unknown> {
  const index = fields.indexOf('event');
  const raw = index >= 0 ? fields[index + 1] : undefined;
  return JSON.parse(raw ?? '{}') as Record<string, unknown>;
}
