// An in-memory ONNX graph that the model builders append to: inputs, outputs, initializers and nodes
// with unique value names. It knows nothing about protobuf; onnx-model-encoder.ts serialises it.

export type ElementType = 'float32' | 'int32' | 'int64';
export type TensorValues = Float32Array | Int32Array | BigInt64Array;
/** A dimension: a fixed size, or a symbolic name for a dynamic one (e.g. `batch_size`). */
export type Dim = number | string;

export type ValueInfo = { name: string; elementType: ElementType; dims: readonly Dim[] };

export type Initializer = {
  name: string;
  elementType: ElementType;
  dims: readonly number[];
  /** Learned weights count towards the parameter total; shape constants and masks do not. */
  isParameter: boolean;
  /** Called once, at write time, so that big weights never sit in memory all at once. */
  produce: () => TensorValues;
};

export type AttributeValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] };

export type GraphNode = {
  name: string;
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: Readonly<Record<string, AttributeValue>>;
};

export const int = (value: number): AttributeValue => ({ kind: 'int', value });
export const float = (value: number): AttributeValue => ({ kind: 'float', value });
export const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
export const floats = (value: readonly number[]): AttributeValue => ({ kind: 'floats', value });

export class OnnxGraph {
  readonly name: string;
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly initializers: Initializer[] = [];
  readonly nodes: GraphNode[] = [];
  readonly #usedNames = new Set<string>();

  constructor(name: string) {
    this.name = name;
  }

  /** `hint` itself if free, else `hint_2`, `hint_3`, … */
  uniqueName(hint: string): string {
    let name = hint;
    for (let suffix = 2; this.#usedNames.has(name); suffix += 1) name = `${hint}_${suffix}`;
    this.#usedNames.add(name);
    return name;
  }

  addInput(name: string, elementType: ElementType, dims: readonly Dim[]): string {
    this.#claim(name);
    this.inputs.push({ name, elementType, dims });
    return name;
  }

  /** Declares a graph output; `name` must be produced by a node (pass it as that node's output name). */
  addOutput(name: string, elementType: ElementType, dims: readonly Dim[]): void {
    this.outputs.push({ name, elementType, dims });
  }

  addParameter(name: string, dims: readonly number[], produce: () => Float32Array): string {
    this.#claim(name);
    this.initializers.push({ name, elementType: 'float32', dims, isParameter: true, produce });
    return name;
  }

  /** A small fixed tensor (shapes, axes, scalars, masks); its values are checked against `dims`. */
  addConstant(hint: string, dims: readonly number[], values: TensorValues): string {
    if (values.length !== elementCount(dims)) {
      throw new Error(`constant ${hint}: ${values.length} values for dims [${dims.join(', ')}]`);
    }
    const name = this.uniqueName(hint);
    const elementType = elementTypeOf(values);
    this.initializers.push({ name, elementType, dims, isParameter: false, produce: () => values });
    return name;
  }

  /** An int64 vector constant, the type ONNX wants for shapes, axes, starts and ends. */
  addInt64s(hint: string, values: readonly number[]): string {
    return this.addConstant(
      hint,
      [values.length],
      BigInt64Array.from(values, (value) => BigInt(value)),
    );
  }

  /** Appends a node with one output and returns that output's name. */
  op(opType: string, inputs: readonly string[], attributes: GraphNode['attributes'] = {}, output?: string) {
    const [name] = this.opMulti(opType, inputs, 1, attributes, output === undefined ? [] : [output]);
    return name!;
  }

  opMulti(
    opType: string,
    inputs: readonly string[],
    outputCount: number,
    attributes: GraphNode['attributes'] = {},
    outputNames: readonly string[] = [],
  ): string[] {
    const name = this.uniqueName(`${opType}_node`);
    const outputs = Array.from({ length: outputCount }, (_, index) => {
      const wanted = outputNames[index];
      if (wanted === undefined) return this.uniqueName(`${opType}_${index}`);
      this.#claim(wanted);
      return wanted;
    });
    this.nodes.push({ name, opType, inputs, outputs, attributes });
    return outputs;
  }

  /** Number of learned scalars (weights, biases, embeddings), as papers count parameters. */
  parameterCount(): number {
    return this.initializers
      .filter((initializer) => initializer.isParameter)
      .reduce((total, initializer) => total + elementCount(initializer.dims), 0);
  }

  #claim(name: string): void {
    if (this.#usedNames.has(name)) throw new Error(`duplicate value name ${name} in graph ${this.name}`);
    this.#usedNames.add(name);
  }
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

function elementTypeOf(values: TensorValues): ElementType {
  if (values instanceof Float32Array) return 'float32';
  if (values instanceof Int32Array) return 'int32';
  return 'int64';
}
