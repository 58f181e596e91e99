import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ClipmodError } from '../../errors/index.ts';
import { type ModelVariant, modelVariants } from '../model-folder.ts';
import { type DownloadOutcome, downloadFile } from './download-file.ts';
import {
  fetchRepoSnapshot,
  type HubConnection,
  type HubFileMeta,
  type RepoSnapshot,
  resolveUrl,
} from './hub-client.ts';
import { defaultRetryPolicy, type RetryNotice, type RetryPolicy, withRetries } from './retry-policy.ts';

export const defaultModelRepo = 'Xenova/clip-vit-base-patch32';
export const defaultHubEndpoint = 'https://huggingface.co';
/** Released OpenAI CLIP models train their logit scale to ln 100; config.json only holds the initial value. */
const releasedLogitScale = 100;
const manifestName = 'clipmod.json';

export type FetchModelOptions = {
  repo: string;
  revision: string;
  variant: ModelVariant;
  outDir: string;
  endpoint: string;
  token?: string | undefined;
  fetchImpl?: typeof fetch;
  onProgress?: (event: FetchProgressEvent) => void;
  retry?: Partial<RetryPolicy>;
};

export type FetchedFile = { path: string; sizeBytes: number; checksum: string; outcome: DownloadOutcome };

export type FetchModelResult = { folder: string; commit: string; files: FetchedFile[] };

/** `fileIndex` counts from 1; 0 marks the model-info request, which precedes the files. */
type FileEventBase = { file: string; fileIndex: number; fileCount: number; bytesTotal: number };

export type FetchProgressEvent =
  | (FileEventBase & { kind: 'file-start'; resumeFromBytes: number })
  | (FileEventBase & { kind: 'file-bytes'; bytesDone: number })
  | (FileEventBase & { kind: 'file-done'; outcome: DownloadOutcome })
  | (FileEventBase & { kind: 'retry' } & RetryNotice);

/** Retries of the model-info request are reported as those of a pseudo-file numbered 0. */
const modelInfoEvent = { file: 'model info', fileIndex: 0, fileCount: 0, bytesTotal: 0 };

/**
 * The files of a Xenova-layout CLIP repo that clipmod loads, for one ONNX variant: the names
 * `loadModelFolder` looks for, as POSIX paths because they are also hub URL paths.
 */
export function modelFilesFor(variant: ModelVariant): string[] {
  const suffix = variant === 'fp32' ? '' : `_${variant}`;
  return [
    'config.json',
    'preprocessor_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'special_tokens_map.json',
    `onnx/vision_model${suffix}.onnx`,
    `onnx/text_model${suffix}.onnx`,
  ];
}

/**
 * Downloads one CLIP model from a Hugging Face hub into `outDir`, every file pinned to the commit
 * that `revision` resolves to, and writes `clipmod.json` last so its presence means "complete".
 */
export async function fetchModel(options: FetchModelOptions): Promise<FetchModelResult> {
  checkOptions(options);
  const hub: HubConnection = {
    endpoint: options.endpoint,
    token: options.token || undefined,
    fetchImpl: options.fetchImpl ?? fetch,
  };
  const policy: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
  const folder = resolve(options.outDir);
  const snapshot = await withRetries(
    `${options.repo}@${options.revision} model info`,
    () => fetchRepoSnapshot(hub, options.repo, options.revision),
    policy,
    (notice) => options.onProgress?.({ ...modelInfoEvent, kind: 'retry', ...notice }),
  );
  const wanted = modelFilesFor(options.variant).map((path) => metaFor(snapshot, path, options));
  await mkdir(folder, { recursive: true });
  const run: FetchRun = { hub, policy, folder, commit: snapshot.commit, options };
  const files: FetchedFile[] = [];
  for (const [index, meta] of wanted.entries()) {
    const outcome = await fetchOne(run, meta, index + 1, wanted.length);
    files.push({ path: meta.path, sizeBytes: meta.sizeBytes, checksum: meta.checksum.value, outcome });
  }
  await writeManifest(folder, options, snapshot.commit);
  return { folder, commit: snapshot.commit, files };
}

type FetchRun = {
  hub: HubConnection;
  policy: RetryPolicy;
  folder: string;
  commit: string;
  options: FetchModelOptions;
};

async function fetchOne(run: FetchRun, meta: HubFileMeta, fileIndex: number, fileCount: number) {
  const { hub, options } = run;
  const base = { file: meta.path, fileIndex, fileCount, bytesTotal: meta.sizeBytes };
  const emit = (event: FetchProgressEvent) => options.onProgress?.(event);
  const target = {
    hub,
    repo: options.repo,
    revision: options.revision,
    commit: run.commit,
    url: resolveUrl(hub.endpoint, options.repo, run.commit, meta.path),
    meta,
    destination: join(run.folder, meta.path),
  };
  const outcome = await downloadFile(target, run.policy, {
    onStart: (resumeFromBytes) => emit({ ...base, kind: 'file-start', resumeFromBytes }),
    onBytes: (bytesDone) => emit({ ...base, kind: 'file-bytes', bytesDone }),
    onRetry: (notice) => emit({ ...base, kind: 'retry', ...notice }),
  });
  emit({ ...base, kind: 'file-done', outcome });
  return outcome;
}

function metaFor(snapshot: RepoSnapshot, path: string, options: FetchModelOptions) {
  const meta = snapshot.files.get(path);
  if (meta !== undefined) return meta;
  const { repo, revision, variant } = options;
  throw new ClipmodError(
    'not_found',
    `${repo}@${revision} has no ${path} (does it publish the ${variant} variant in the Xenova ONNX layout?)`,
    { details: { repo, revision, commit: snapshot.commit, file: path, variant } },
  );
}

async function writeManifest(folder: string, options: FetchModelOptions, commit: string): Promise<void> {
  const manifest = {
    id: `${options.repo}@${commit.slice(0, 7)}`,
    logitScale: releasedLogitScale,
    variant: options.variant,
    source: { repo: options.repo, revision: options.revision, commit },
  };
  const path = join(folder, manifestName);
  await writeFile(`${path}.incomplete`, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(`${path}.incomplete`, path);
}

// Repo names become URL path segments and the revision is percent-encoded, so checking the
// repo's shape is what keeps a request on the hub's `/api/models/` and `/resolve/` routes.
const repoPattern = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

function checkOptions(options: FetchModelOptions): void {
  const { repo, revision, variant, endpoint } = options;
  if (!repoPattern.test(repo) || repo.includes('..')) {
    throw new ClipmodError('bad_request', `not a hub repository name: ${JSON.stringify(repo)}`, {
      details: { repo },
    });
  }
  if (revision.trim() === '') throw new ClipmodError('bad_request', 'the revision is empty');
  if (!modelVariants.includes(variant)) {
    throw new ClipmodError('bad_request', `unknown variant ${variant}; use ${modelVariants.join(', ')}`);
  }
  const protocol = URL.canParse(endpoint) ? new URL(endpoint).protocol : '';
  if (protocol !== 'https:' && protocol !== 'http:') {
    throw new ClipmodError('bad_request', `the hub endpoint is not an http(s) URL: ${endpoint}`);
  }
}
