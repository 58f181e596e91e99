// Downloads a CLIP model in the Xenova ONNX layout from a Hugging Face hub (or a mirror), pinned
// to one commit, resumable and checksum-verified, plus the stderr progress display for it.
// Depends on node:fs, global fetch, shared/errors and the folder layout names of ../model-folder.ts;
// it never loads the model and never reads process.env (endpoint and token arrive as parameters).

export { type ModelVariant, modelVariants } from '../model-folder.ts';
export {
  defaultHubEndpoint,
  defaultModelRepo,
  type FetchedFile,
  type FetchModelOptions,
  type FetchModelResult,
  type FetchProgressEvent,
  fetchModel,
  modelFilesFor,
} from './fetch-model.ts';
export { hashFile } from './file-checksum.ts';
export {
  createProgressRenderer,
  type FileDoneLine,
  formatBytes,
  formatDuration,
  formatFileDone,
  formatProgressLine,
  type ProgressLine,
  type ProgressRendererOptions,
} from './progress-bar.ts';
export { defaultRetryPolicy, parseRetryAfterMs, type RetryPolicy, retryDelayMs } from './retry-policy.ts';
