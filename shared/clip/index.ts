// The CLIP engine: reference-exact tokenizer and preprocessing, ONNX model folders (load, validate,
// run), zero-shot scoring maths and the shared text-embedding cache. Model building and fetching live
// in ./model-build and ./model-fetch (imported directly: only the CLI and workers need them).
// Must not depend on express, BullMQ, policies or any service; onnxruntime is imported in onnx-runtime.ts only.

export { type ClipModel, type LoadClipModelOptions, loadClipModel } from './clip-model.ts';
export {
  CLIP_CONTEXT_LENGTH,
  type ClipTokenizer,
  DEFAULT_TOKENIZER_DIR,
  loadClipTokenizer,
} from './clip-tokenizer.ts';
export { type ExecutionProviderChoice, executionProviderChoices } from './execution-providers.ts';
export { DEFAULT_MAX_SAMPLED_FRAMES, preprocessFrames, sampleFrameIndexes } from './image-frames.ts';
export {
  configureImageDecoding,
  DEFAULT_IMAGE_LIMITS,
  type ImageFormat,
  type ImageInfo,
  type ImageLimits,
  probeImage,
  resolveLimits,
  sniffImageFormat,
} from './image-probe.ts';
export { type ModelVariant, modelVariants } from './model-folder.ts';
export {
  normalizeInto,
  type PreprocessMode,
  type PreprocessOptions,
  preprocessImage,
  preprocessInto,
  preprocessToCrop,
  type RgbCrop,
  tensorLength,
} from './preprocess.ts';
export {
  OPENAI_CLIP_PREPROCESSOR,
  type PreprocessorConfig,
  parsePreprocessorConfig,
} from './preprocessor-config.ts';
export { cleanClipText } from './text-cleaning.ts';
export {
  type CachedTextEmbeddings,
  embedTextsCached,
  InMemoryTextEmbeddingCache,
  RedisTextEmbeddingCache,
  type TextEmbeddingCache,
} from './text-embedding-cache.ts';
export { loadThreadedClipModel, type ThreadedClipModel } from './threaded-clip-model.ts';
export {
  cosineScores,
  defaultPromptTemplate,
  ensembleClassEmbeddings,
  expandPrompts,
  fillTemplate,
  type LabelScore,
  logitsFromCosines,
  normalizeRows,
  rankLabels,
  softmax,
  softmaxRows,
  zeroShotProbabilities,
} from './zero-shot.ts';
