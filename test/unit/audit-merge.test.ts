import { describe, expect, it } from 'vitest';
import { type AuditPage, compareStreamIds, mergeAuditPages } from '../../shared/audit/index.ts';

// GET /v1/audit shows two streams (the admin log and the policy log) as one, paged by stream id. These
// are the paging rules that keep every event on exactly one page.

type Event = { id: string; from: string };

const page = (from: string, ids: string[], next: string | null): AuditPage<Event> => ({
  data: ids.map((id) => ({ id, from })),
  next,
});

/** Pages through `streams` (newest-first ids) as the route does, `limit` at a time. */
function pageThrough(streams: Record<string, string[]>, limit: number): Event[][] {
  const read = (from: string, before: string | null) => {
    const older = streams[from]!.filter((id) => before === null || compareStreamIds(id, before) < 0);
    const data = older.slice(0, limit);
    return page(from, data, data.length === limit ? data.at(-1)! : null);
  };
  const pages: Event[][] = [];
  let before: string | null = null;
  do {
    const merged = mergeAuditPages(
      Object.keys(streams).map((from) => read(from, before)),
      limit,
    );
    pages.push(merged.data);
    before = merged.next;
  } while (before !== null && pages.length < 50);
  return pages;
}

describe('merging audit pages', () => {
  it.each([
    {
      rule: 'orders by stream id, newest first, and cuts at the limit',
      pages: [page('admin', ['9-0', '5-0'], '5-0'), page('policy', ['7-0', '6-0'], '6-0')],
      limit: 2,
      shown: ['admin:9-0', 'policy:7-0'],
      next: '7-0',
    },
    {
      // The admin page stopped at 8-0 (its limit): older admin events may sit above the policy log's 3-0.
      rule: 'shows nothing below a stream that is still unread there',
      pages: [page('admin', ['9-0', '8-0'], '8-0'), page('policy', ['3-0'], null)],
      limit: 5,
      shown: ['admin:9-0', 'admin:8-0'],
      next: '8-0',
    },
    {
      rule: 'never ends a page between two streams holding the same id',
      pages: [page('admin', ['4-0'], null), page('policy', ['4-0', '2-0'], null)],
      limit: 1,
      shown: ['admin:4-0', 'policy:4-0'],
      next: '4-0',
    },
    {
      rule: 'ends with a null cursor once every stream is read',
      pages: [page('admin', ['4-0'], null), page('policy', [], null)],
      limit: 3,
      shown: ['admin:4-0'],
      next: null,
    },
  ])('$rule', ({ pages, limit, shown, next }) => {
    const merged = mergeAuditPages(pages, limit);
    expect(merged.data.map((event) => `${event.from}:${event.id}`)).toEqual(shown);
    expect(merged.next).toBe(next);
  });

  it('pages through interleaved streams with ties and shows every event exactly once', () => {
    const streams = {
      admin: ['12-0', '10-1', '10-0', '7-0', '4-0', '3-0', '1-0'],
      policy: ['11-0', '10-0', '9-0', '4-0', '2-0'],
    };
    for (const limit of [1, 2, 3, 5, 50]) {
      const pages = pageThrough(streams, limit);
      const seen = pages.flat().map((event) => `${event.from}:${event.id}`);
      const all = Object.entries(streams).flatMap(([from, ids]) => ids.map((id) => `${from}:${id}`));
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(all.sort());
      const ids = pages.flat().map((event) => event.id);
      expect(ids).toEqual([...ids].sort((a, b) => compareStreamIds(b, a)));
    }
  });
});
