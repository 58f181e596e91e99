// The one file that imports onnxruntime-node: a thin adapter so the rest of the project deals in
// plain typed arrays and value descriptions, and a runtime upgrade touches a single place.
import * as ort from 'onnxruntime-node';

// Every failure onnxruntime logs also reaches us as an exception, which callers log through pino with
// context; its own stderr lines (e.g. a missing CUDA library while `auto` probes) would only add noise.
// Read once, when the first session initialises the runtime.
ort.env.logLevel = 'fatal';

/** A hardware backend onnxruntime can run a session on. */
export type ExecutionProviderName = 'cpu' | 'cuda' | 'tensorrt';

/** What a graph declares for one input or output; `shape` holds numbers (static) or names (dynamic). */
export type OnnxValueInfo = {
  name: string;
  isTensor: boolean;
  elementType: string | undefined;
  shape: readonly (number | string)[] | undefined;
};

export type OnnxSessionOptions = {
  /** In priority order; onnxruntime places each node on the first provider that supports it. */
  executionProviders: readonly ExecutionProviderName[];
  /** GPU ordinal for cuda/tensorrt, so one worker can be pinned to one GPU. */
  deviceId?: number;
  intraOpThreads?: number;
  interOpThreads?: number;
};

/** A tensor handed to or returned by a session: flat data plus its dimensions. */
export type OnnxTensor = {
  elementType: 'float32' | 'float16' | 'int64';
  data: Float32Array | Uint16Array | BigInt64Array;
  dims: readonly number[];
};

export type OnnxSession = {
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  run(
    feeds: Readonly<Record<string, OnnxTensor>>,
    outputNames: readonly string[],
  ): Promise<Record<string, OnnxTensor>>;
  close(): Promise<void>;
};

/** Backends this onnxruntime-node build knows about; cuda/tensorrt are listed even when their libraries are absent. */
export function listOnnxBackends(): string[] {
  return ort.listSupportedBackends().map((backend) => backend.name);
}

export async function createOnnxSession(
  modelPath: string,
  options: OnnxSessionOptions,
): Promise<OnnxSession> {
  const session = await ort.InferenceSession.create(modelPath, toSessionOptions(options));
  return {
    inputs: describeValues(session.inputNames, session.inputMetadata),
    outputs: describeValues(session.outputNames, session.outputMetadata),
    run: (feeds, outputNames) => runSession(session, feeds, outputNames),
    close: () => session.release(),
  };
}

function toSessionOptions(options: OnnxSessionOptions): ort.InferenceSession.SessionOptions {
  const deviceId = options.deviceId ?? 0;
  const executionProviders = options.executionProviders.map((name) =>
    name === 'cpu' ? 'cpu' : { name, deviceId },
  );
  return {
    executionProviders,
    graphOptimizationLevel: 'all',
    // Errors only: onnxruntime's warnings about node placement would flood every worker start.
    logSeverityLevel: 3,
    ...(options.intraOpThreads === undefined ? {} : { intraOpNumThreads: options.intraOpThreads }),
    ...(options.interOpThreads === undefined ? {} : { interOpNumThreads: options.interOpThreads }),
  };
}

function describeValues(
  names: readonly string[],
  metadata: readonly ort.InferenceSession.ValueMetadata[] | undefined,
): OnnxValueInfo[] {
  return names.map((name) => {
    const meta = metadata?.find((entry) => entry.name === name);
    if (meta === undefined) return { name, isTensor: true, elementType: undefined, shape: undefined };
    if (!meta.isTensor) return { name, isTensor: false, elementType: undefined, shape: undefined };
    return { name, isTensor: true, elementType: meta.type, shape: [...meta.shape] };
  });
}

async function runSession(
  session: ort.InferenceSession,
  feeds: Readonly<Record<string, OnnxTensor>>,
  outputNames: readonly string[],
): Promise<Record<string, OnnxTensor>> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(feeds)) {
    // The tensor wraps the caller's typed array (a view is fine): no copy of the pixel batch.
    ortFeeds[name] = new ort.Tensor(tensor.elementType, tensor.data, [...tensor.dims]);
  }
  const results = await session.run(ortFeeds, [...outputNames]);
  const out: Record<string, OnnxTensor> = {};
  for (const name of outputNames) {
    const value = results[name];
    if (value === undefined) throw new Error(`onnxruntime returned no output '${name}'`);
    out[name] = fromOrtTensor(name, value);
  }
  return out;
}

function fromOrtTensor(name: string, value: ort.OnnxValue): OnnxTensor {
  const tensor = value as ort.Tensor;
  const dims = [...tensor.dims];
  if (tensor.type === 'float32') return { elementType: 'float32', data: tensor.data as Float32Array, dims };
  if (tensor.type === 'int64') return { elementType: 'int64', data: tensor.data as BigInt64Array, dims };
  if (tensor.type === 'float16') {
    const data = tensor.data as unknown as ArrayBufferView;
    const bits = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    return { elementType: 'float16', data: bits, dims };
  }
  throw new Error(`output '${name}' has unsupported element type ${tensor.type}`);
}

// Scratch views for bit-level float conversion; Node 20 has no Float16Array.
const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/** IEEE half-precision bits of each value, rounded to nearest even (for fp16 graphs that take float16 inputs). */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let index = 0; index < values.length; index += 1) out[index] = toHalfBits(values[index]!);
  return out;
}

export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let index = 0; index < bits.length; index += 1) {
    const half = bits[index]!;
    const sign = half & 0x8000 ? -1 : 1;
    const exponent = (half >> 10) & 0x1f;
    const mantissa = half & 0x3ff;
    if (exponent === 0) out[index] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) out[index] = mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    else out[index] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return out;
}

function toHalfBits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    return sign | roundShift(mantissa | 0x800000, 14 - halfExponent);
  }
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | ((halfExponent << 10) + roundShift(mantissa, 13));
}

/** `value >> shift`, rounded to nearest with ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}
