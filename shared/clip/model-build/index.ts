// Builds clipmod's own CLIP-shaped ONNX model folders (tiny, color, vit-b-32) with no ONNX or protobuf
// library: tests and benchmarks need models and no weights can be downloaded where they run.
// Depends only on node built-ins and shared/clip/assets (the tokenizer files); never on the runtime.
export {
  BUILD_VERSION,
  type BuildOptions,
  type BuiltModel,
  type BuiltModelKind,
  buildModel,
  buildTransformerGraphs,
  builtModelKinds,
  defaultSeed,
  isBuiltModelKind,
  transformerSpecs,
} from './build-model.ts';
export { colorEmbeddingDim, colorPrototypes } from './color-model.ts';
export type { WrittenFile } from './model-folder-writer.ts';
