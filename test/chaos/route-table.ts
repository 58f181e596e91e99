import type { Express } from 'express';

// The route table of an express 5 app, read from its router stack (router 2.x layers keep the path
// they were declared with in `rawPath`). Tests iterate it so that a route added without a guard, or
// without a place in the authorization matrix, fails them.

export type RouteEntry = { method: string; path: string };

type Layer = {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[]; router?: { stack?: Layer[] }; _router?: { stack?: Layer[] } };
};

/** Every (method, path) the app answers, nested routers' mount paths included; `_all` routes excluded. */
export function routeTable(app: Express): RouteEntry[] {
  const stack = (app as unknown as { router: { stack: Layer[] } }).router.stack;
  const seen = new Set<string>();
  const entries: RouteEntry[] = [];
  for (const entry of walk(stack, '')) {
    const key = `${entry.method} ${entry.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    entries.push(entry);
  }
  return entries;
}

function* walk(stack: readonly Layer[], prefix: string): Generator<RouteEntry> {
  for (const layer of stack) {
    if (layer.route) {
      for (const path of pathsOf(layer.route.path)) {
        for (const [method, isOn] of Object.entries(layer.route.methods)) {
          if (isOn && method !== '_all') yield { method: method.toUpperCase(), path: join(prefix, path) };
        }
      }
      continue;
    }
    // A nested router, or a whole app mounted as middleware (bull-board brings its own express).
    const nested = layer.handle?.stack ?? layer.handle?.router?.stack ?? layer.handle?._router?.stack;
    if (!Array.isArray(nested)) continue;
    for (const mount of pathsOf(layer.rawPath ?? '/'))
      yield* walk(nested, mount === '/' ? prefix : join(prefix, mount));
  }
}

function pathsOf(raw: unknown): string[] {
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) return raw.flatMap(pathsOf);
  throw new Error(`route path ${String(raw)} is not a string: the matrix cannot test it`);
}

function join(prefix: string, path: string): string {
  if (path === '/' || path === '') return prefix || '/';
  return `${prefix}${path}`;
}
