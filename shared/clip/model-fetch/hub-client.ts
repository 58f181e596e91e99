import { z } from 'zod';
import { ClipmodError } from '../../errors/index.ts';
import { parseRetryAfterMs, TransientFetchError } from './retry-policy.ts';

/** Where and how to reach a Hugging Face hub (or a mirror speaking its API). */
export type HubConnection = {
  endpoint: string;
  token: string | undefined;
  fetchImpl: typeof fetch;
};

export type FileChecksum = { algorithm: 'sha256' | 'git-sha1'; value: string };

export type HubFileMeta = { path: string; sizeBytes: number; checksum: FileChecksum };

/** A revision resolved to one commit, with the metadata of every file in it. */
export type RepoSnapshot = { commit: string; files: ReadonlyMap<string, HubFileMeta> };

/** Headers the hub sets on its own response; they survive the redirect to the CDN. */
export type HubResponse = { response: Response; repoCommit: string | null; etag: string | null };

const maxRedirects = 5;

const siblingSchema = z.object({
  rfilename: z.string(),
  size: z.number().int().nonnegative().optional(),
  blobId: z.string().optional(),
  lfs: z.object({ sha256: z.string(), size: z.number().int().nonnegative() }).optional(),
});

const modelInfoSchema = z.object({
  sha: z.string().regex(/^[0-9a-f]{40}$/),
  siblings: z.array(siblingSchema),
});

export function modelInfoUrl(endpoint: string, repo: string, revision: string): string {
  return `${trimSlash(endpoint)}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

export function resolveUrl(endpoint: string, repo: string, commit: string, path: string): string {
  const encodedPath = path.split('/').map(encodeURIComponent).join('/');
  return `${trimSlash(endpoint)}/${repo}/resolve/${encodeURIComponent(commit)}/${encodedPath}`;
}

/** Resolves `revision` to a commit; `blobs=true` makes the hub list sizes and LFS sha256s. */
export async function fetchRepoSnapshot(
  hub: HubConnection,
  repo: string,
  revision: string,
): Promise<RepoSnapshot> {
  const { response } = await hubRequest(hub, modelInfoUrl(hub.endpoint, repo, revision), {});
  if (!response.ok) throw await hubFailure(response, { hub, repo, revision });
  const parsed = modelInfoSchema.safeParse(await readJson(response));
  if (!parsed.success) {
    throw new ClipmodError(
      'model_fetch_failed',
      `${repo}@${revision}: the hub's model info is not readable`,
      {
        details: { repo, revision, issues: parsed.error.issues.slice(0, 3) },
      },
    );
  }
  const files = new Map<string, HubFileMeta>();
  for (const sibling of parsed.data.siblings) {
    const meta = toFileMeta(sibling);
    if (meta !== undefined) files.set(meta.path, meta);
  }
  return { commit: parsed.data.sha, files };
}

function toFileMeta(sibling: z.infer<typeof siblingSchema>): HubFileMeta | undefined {
  if (sibling.lfs !== undefined) {
    return {
      path: sibling.rfilename,
      sizeBytes: sibling.lfs.size,
      checksum: { algorithm: 'sha256', value: sibling.lfs.sha256 },
    };
  }
  if (sibling.size === undefined || sibling.blobId === undefined) return undefined;
  return {
    path: sibling.rfilename,
    sizeBytes: sibling.size,
    checksum: { algorithm: 'git-sha1', value: sibling.blobId },
  };
}

/**
 * GET that follows redirects by hand so the token goes to the hub's origin only: a file on the
 * hub redirects to a CDN on another host, which must never see `Authorization`.
 */
export async function hubRequest(
  hub: HubConnection,
  url: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<HubResponse> {
  const hubOrigin = new URL(hub.endpoint).origin;
  let current = new URL(url);
  let repoCommit: string | null = null;
  let etag: string | null = null;
  for (let hop = 0; hop <= maxRedirects; hop += 1) {
    const isHub = current.origin === hubOrigin;
    const sent = isHub && hub.token ? { ...headers, authorization: `Bearer ${hub.token}` } : headers;
    const response = await send(hub.fetchImpl, current, sent, signal);
    if (isHub) {
      repoCommit ??= response.headers.get('x-repo-commit');
      etag ??= response.headers.get('x-linked-etag') ?? response.headers.get('etag');
    }
    const location = response.headers.get('location');
    if (!isRedirect(response.status) || location === null) return { response, repoCommit, etag };
    await response.body?.cancel();
    current = new URL(location, current);
    if (current.protocol !== 'https:' && current.protocol !== 'http:') {
      throw new ClipmodError(
        'model_fetch_failed',
        `the hub redirected to an unsupported URL: ${current.protocol}`,
      );
    }
  }
  throw new ClipmodError('model_fetch_failed', `more than ${maxRedirects} redirects for ${url}`);
}

async function send(
  fetchImpl: typeof fetch,
  url: URL,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
): Promise<Response> {
  try {
    return await fetchImpl(url, { headers, redirect: 'manual', ...(signal ? { signal } : {}) });
  } catch (error) {
    const reason = signal?.aborted ? 'no response (stalled)' : networkReason(error);
    throw new TransientFetchError(`${url.host}: ${reason}`, { cause: error });
  }
}

export type FailureContext = { hub: HubConnection; repo: string; revision: string; file?: string };

/** Turns a non-2xx hub answer into a transient error (retry) or a ClipmodError that says what to do. */
export async function hubFailure(response: Response, context: FailureContext): Promise<Error> {
  await response.body?.cancel();
  const { status } = response;
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfterMs(response.headers.get('retry-after'), Date.now());
    return new TransientFetchError(`HTTP ${status}`, retryAfterMs === undefined ? {} : { retryAfterMs });
  }
  const hubCode = response.headers.get('x-error-code') ?? undefined;
  const target = `${context.repo}@${context.revision}${context.file ? ` file ${context.file}` : ''}`;
  const details = { repo: context.repo, revision: context.revision, file: context.file, status, hubCode };
  const tokenHint = context.hub.token
    ? 'check that HF_TOKEN has access to it'
    : 'if it is private or gated, set HF_TOKEN';
  if (hubCode === 'RepoNotFound' || hubCode === 'RevisionNotFound' || hubCode === 'EntryNotFound') {
    const what = { RepoNotFound: 'repository', RevisionNotFound: 'revision', EntryNotFound: 'file' }[hubCode];
    return new ClipmodError('not_found', `${target}: ${what} not found on the hub (${tokenHint})`, {
      details,
    });
  }
  if (status === 404) return new ClipmodError('not_found', `${target}: not found on the hub`, { details });
  if (status === 401) {
    const message = context.hub.token ? 'the hub rejected HF_TOKEN' : `the hub wants a token: ${tokenHint}`;
    return new ClipmodError('unauthorized', `${target}: ${message}`, { details });
  }
  if (status === 403) {
    const gated = hubCode === 'GatedRepo' ? ' (gated: accept its terms on the hub first)' : '';
    return new ClipmodError('forbidden', `${target}: access denied${gated}; ${tokenHint}`, { details });
  }
  return new ClipmodError('model_fetch_failed', `${target}: the hub answered HTTP ${status}`, { details });
}

export function networkReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** A broken connection is worth a retry; a body that is not JSON is left for the schema to report. */
async function readJson(response: Response): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new TransientFetchError(`model info: ${networkReason(error)}`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function trimSlash(endpoint: string): string {
  return endpoint.replace(/\/+$/, '');
}
