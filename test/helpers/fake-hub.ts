import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// A loopback stand-in for the Hugging Face hub, serving one repo the way huggingface.co does:
// model info with `blobs=true` metadata, small files straight from `/resolve/`, LFS files by a
// redirect to a "CDN" on a second server reached through another host name (localhost vs
// 127.0.0.1), so a client that leaks its token across hosts is caught.

/** Applied to the request that serves a file's bytes (the hub for small files, the CDN for LFS). */
export type FakeHubFault =
  | { kind: 'cut-after'; bytes: number }
  | { kind: 'stall-after'; bytes: number }
  | { kind: 'status'; status: number }
  | { kind: 'corrupt' }
  | { kind: 'ignore-range' };

/** Pass to `injectFaults` in place of a path to fail the model-info request (status faults only). */
export const modelInfoFaults = '(model info)';

export type FakeHubRequest = {
  server: 'hub' | 'cdn';
  path: string;
  /** The repo file this request served, when it served one. */
  file: string | undefined;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
  bodyBytes: number;
};

export type FakeHubOptions = {
  repo: string;
  files: Readonly<Record<string, Uint8Array>>;
  /** Requests without `Bearer <token>` are refused, as for a gated or private repo. */
  requiredToken?: string;
};

export type FakeHub = {
  endpoint: string;
  cdnOrigin: string;
  commit: string;
  requests: FakeHubRequest[];
  /** Queues faults for a file; each request for its bytes takes the next one. */
  injectFaults(path: string, ...faults: FakeHubFault[]): void;
  close(): Promise<void>;
};

type RepoFile = { path: string; content: Buffer; isLfs: boolean; sha256: string; blobId: string };

type HubState = {
  options: FakeHubOptions;
  commit: string;
  files: Map<string, RepoFile>;
  faults: Map<string, FakeHubFault[]>;
  requests: FakeHubRequest[];
  cdnOrigin: string;
};

export function gitBlobId(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.byteLength}\0`).update(content).digest('hex');
}

export function sha256Hex(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

export async function startFakeHub(options: FakeHubOptions): Promise<FakeHub> {
  const files = new Map<string, RepoFile>();
  for (const [path, bytes] of Object.entries(options.files)) files.set(path, toRepoFile(path, bytes));
  const state: HubState = {
    options,
    commit: createHash('sha1').update(`fake commit of ${options.repo}`).digest('hex'),
    files,
    faults: new Map(),
    requests: [],
    cdnOrigin: '',
  };
  const cdn = await listen(
    createServer((req, res) => serveCdn(state, req, res)),
    'localhost',
  );
  state.cdnOrigin = `http://localhost:${(cdn.address() as AddressInfo).port}`;
  const hub = await listen(
    createServer((req, res) => serveHub(state, req, res)),
    '127.0.0.1',
  );
  return {
    endpoint: `http://127.0.0.1:${(hub.address() as AddressInfo).port}`,
    cdnOrigin: state.cdnOrigin,
    commit: state.commit,
    requests: state.requests,
    injectFaults(path, ...faults) {
      state.faults.set(path, [...(state.faults.get(path) ?? []), ...faults]);
    },
    close: async () => {
      await Promise.all([stop(hub), stop(cdn)]);
    },
  };
}

function toRepoFile(path: string, bytes: Uint8Array): RepoFile {
  const content = Buffer.from(bytes);
  const sha256 = sha256Hex(content);
  const isLfs = path.endsWith('.onnx');
  // For an LFS file git stores a pointer, so the blob id is the pointer's, not the content's.
  const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${content.length}\n`;
  const blobId = gitBlobId(Buffer.from(isLfs ? pointer : content));
  return { path, content, isLfs, sha256, blobId };
}

function serveHub(state: HubState, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://hub.invalid');
  const info = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(url.pathname);
  const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  const log = logEntry(state, 'hub', req, url.pathname);
  const [repo, revision] = info ? [info[1], info[2]] : resolve ? [resolve[1], resolve[2]] : [];
  if (repo === undefined || revision === undefined) {
    finish(res, log, 404, {});
    return;
  }
  const refusal = checkAccess(state, req, decodeURIComponent(repo), decodeURIComponent(revision));
  if (refusal !== undefined) {
    finish(res, log, refusal.status, refusal.headers);
    return;
  }
  if (info) {
    const fault = state.faults.get(modelInfoFaults)?.shift();
    if (fault?.kind === 'status') finish(res, log, fault.status, {});
    else sendModelInfo(state, res, log);
    return;
  }
  const file = state.files.get(decodeURIComponent(resolve?.[3] ?? ''));
  if (file === undefined) {
    finish(res, log, 404, { 'x-error-code': 'EntryNotFound' });
    return;
  }
  log.file = file.path;
  const common = { 'x-repo-commit': state.commit, 'x-linked-size': String(file.content.length) };
  if (file.isLfs) {
    const location = `${state.cdnOrigin}/cdn/${file.sha256}?signature=fake`;
    const headers = { ...common, location, 'x-linked-etag': `"${file.sha256}"`, etag: `"${file.blobId}"` };
    finish(res, log, 302, headers);
    return;
  }
  serveBytes(state, req, res, file, log, { ...common, etag: `"${file.blobId}"` });
}

function serveCdn(state: HubState, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://cdn.invalid');
  const log = logEntry(state, 'cdn', req, url.pathname);
  const sha256 = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
  const file = [...state.files.values()].find((candidate) => candidate.sha256 === sha256);
  if (file === undefined) {
    finish(res, log, 404, {});
    return;
  }
  log.file = file.path;
  serveBytes(state, req, res, file, log, { etag: `"cdn-${file.sha256.slice(0, 16)}"` });
}

type Refusal = { status: number; headers: Record<string, string> };

function checkAccess(
  state: HubState,
  req: IncomingMessage,
  repo: string,
  revision: string,
): Refusal | undefined {
  const authorization = req.headers.authorization;
  const required = state.options.requiredToken;
  if (repo !== state.options.repo) {
    // Like huggingface.co: anonymous callers get 401 so private repos cannot be probed for.
    return { status: authorization ? 404 : 401, headers: { 'x-error-code': 'RepoNotFound' } };
  }
  if (required !== undefined && authorization !== `Bearer ${required}`) {
    return authorization
      ? { status: 403, headers: { 'x-error-code': 'GatedRepo' } }
      : { status: 401, headers: {} };
  }
  if (revision !== 'main' && revision !== state.commit) {
    return { status: 404, headers: { 'x-error-code': 'RevisionNotFound' } };
  }
  return undefined;
}

function sendModelInfo(state: HubState, res: ServerResponse, log: FakeHubRequest): void {
  const siblings = [...state.files.values()].map((file) => ({
    rfilename: file.path,
    blobId: file.blobId,
    size: file.content.length,
    ...(file.isLfs ? { lfs: { sha256: file.sha256, size: file.content.length, pointerSize: 134 } } : {}),
  }));
  const body = Buffer.from(JSON.stringify({ id: state.options.repo, sha: state.commit, siblings }));
  log.status = 200;
  log.bodyBytes = body.length;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function serveBytes(
  state: HubState,
  req: IncomingMessage,
  res: ServerResponse,
  file: RepoFile,
  log: FakeHubRequest,
  headers: Record<string, string>,
): void {
  const fault = state.faults.get(file.path)?.shift();
  if (fault?.kind === 'status') {
    finish(res, log, fault.status, headers);
    return;
  }
  const content = fault?.kind === 'corrupt' ? corrupted(file.content) : file.content;
  const range = fault?.kind === 'ignore-range' ? undefined : parseRange(req.headers.range, content.length);
  if (range === 'unsatisfiable') {
    finish(res, log, 416, { ...headers, 'content-range': `bytes */${content.length}` });
    return;
  }
  const start = range?.start ?? 0;
  const body = content.subarray(start, range?.end ?? content.length);
  const status = range ? 206 : 200;
  const rangeHeader = range
    ? { 'content-range': `bytes ${start}-${start + body.length - 1}/${content.length}` }
    : {};
  res.writeHead(status, {
    ...headers,
    ...rangeHeader,
    'accept-ranges': 'bytes',
    'content-length': body.length,
  });
  log.status = status;
  if (fault?.kind === 'stall-after') {
    // Headers and a first slice, then silence with the connection left open.
    log.bodyBytes = Math.min(fault.bytes, body.length);
    res.write(body.subarray(0, fault.bytes));
    return;
  }
  if (fault?.kind === 'cut-after') {
    log.bodyBytes = Math.min(fault.bytes, body.length);
    // Cutting after the write is flushed, plus a moment for the client to drain it, lands the cut
    // at `bytes` in practice; a client may still drop what it had buffered, so tests allow that.
    res.write(body.subarray(0, fault.bytes), () => setTimeout(() => res.socket?.destroy(), 50));
    return;
  }
  log.bodyBytes = body.length;
  res.end(body);
}

function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d+)-(\d*)$/.exec(header);
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = match[2] ? Math.min(size, Number(match[2]) + 1) : size;
  return start >= size ? 'unsatisfiable' : { start, end };
}

function corrupted(content: Buffer): Buffer {
  const copy = Buffer.from(content);
  const middle = Math.floor(copy.length / 2);
  copy[middle] = (copy[middle] ?? 0) ^ 0xff;
  return copy;
}

function logEntry(
  state: HubState,
  server: 'hub' | 'cdn',
  req: IncomingMessage,
  path: string,
): FakeHubRequest {
  const entry: FakeHubRequest = {
    server,
    path,
    file: undefined,
    range: req.headers.range,
    authorization: req.headers.authorization,
    status: 0,
    bodyBytes: 0,
  };
  state.requests.push(entry);
  return entry;
}

function finish(
  res: ServerResponse,
  log: FakeHubRequest,
  status: number,
  headers: Record<string, string>,
): void {
  log.status = status;
  res.writeHead(status, headers);
  res.end();
}

function listen(server: Server, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
}

function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
