// The smallest WebAssembly binary writer the resampling kernels need: one exported memory, i32
// parameters, i32/v128 locals, structured loops and the handful of core and SIMD instructions they use.
// Hand-written because the toolchain has no WAT assembler and the kernels are a few dozen instructions;
// the binary format is https://webassembly.github.io/spec/core/binary/ (SIMD: opcode prefix 0xfd).

const I32 = 0x7f;
const V128 = 0x7b;

/** Core opcodes used by the kernels (binary format §5.4). */
const op = {
  loop: 0x03,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Load: 0x28,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32LtU: 0x49,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32Mul: 0x6c,
} as const;

/** SIMD opcodes (after the 0xfd prefix), from the SIMD proposal's binary encoding table. */
export const simd = {
  v128Load: 0x00,
  v128Load32Splat: 0x09,
  v128Store: 0x0b,
  i8x16Swizzle: 0x0e,
  i32x4Splat: 0x11,
  v128Store32Lane: 0x5a,
  v128Load64Zero: 0x5d,
  i8x16NarrowI16x8U: 0x66,
  i16x8NarrowI32x4S: 0x85,
  i16x8ExtendLowI8x16U: 0x89,
  i16x8ExtendHighI8x16U: 0x8a,
  i32x4ExtendLowI16x8U: 0xa9,
  i32x4ExtendHighI16x8U: 0xaa,
  i32x4Shl: 0xab,
  i32x4ShrS: 0xac,
  i32x4Add: 0xae,
  i32x4Mul: 0xb5,
  i32x4DotI16x8S: 0xba,
} as const;

/** Memory operations carry an alignment hint and an offset; the kernels claim no alignment, offset 0. */
const memoryOps: ReadonlySet<number> = new Set([
  simd.v128Load,
  simd.v128Load32Splat,
  simd.v128Store,
  simd.v128Store32Lane,
  simd.v128Load64Zero,
]);

function unsignedLeb(value: number): number[] {
  const bytes: number[] = [];
  let rest = value >>> 0;
  do {
    const byte = rest & 0x7f;
    rest >>>= 7;
    bytes.push(rest === 0 ? byte : byte | 0x80);
  } while (rest !== 0);
  return bytes;
}

function signedLeb(value: number): number[] {
  const bytes: number[] = [];
  let rest = value | 0;
  for (;;) {
    const byte = rest & 0x7f;
    rest >>= 7;
    const isDone = (rest === 0 && (byte & 0x40) === 0) || (rest === -1 && (byte & 0x40) !== 0);
    bytes.push(isDone ? byte : byte | 0x80);
    if (isDone) return bytes;
  }
}

const vector = (items: readonly number[][]): number[] => [...unsignedLeb(items.length), ...items.flat()];
const named = (name: string): number[] => vector([...Buffer.from(name, 'utf8')].map((b) => [b]));
const section = (id: number, payload: number[]): number[] => [id, ...unsignedLeb(payload.length), ...payload];

/** One function `(param i32 …)` with named i32 and v128 locals, written instruction by instruction. */
export class WasmFunctionWriter {
  readonly name: string;
  readonly paramCount: number;
  readonly #indexes = new Map<string, number>();
  readonly #localTypes: number[] = [];
  readonly #body: number[] = [];

  constructor(name: string, params: readonly string[], locals: { i32?: string[]; v128?: string[] }) {
    this.name = name;
    this.paramCount = params.length;
    for (const param of params) this.#indexes.set(param, this.#indexes.size);
    for (const [type, names] of [
      [I32, locals.i32 ?? []],
      [V128, locals.v128 ?? []],
    ] as const) {
      for (const local of names) {
        this.#indexes.set(local, this.#indexes.size);
        this.#localTypes.push(type);
      }
    }
  }

  #index(name: string): number {
    const index = this.#indexes.get(name);
    if (index === undefined) throw new Error(`${this.name}: no local named ${name}`);
    return index;
  }

  get(...names: string[]): this {
    for (const name of names) this.#body.push(op.localGet, ...unsignedLeb(this.#index(name)));
    return this;
  }

  set(name: string): this {
    this.#body.push(op.localSet, ...unsignedLeb(this.#index(name)));
    return this;
  }

  tee(name: string): this {
    this.#body.push(op.localTee, ...unsignedLeb(this.#index(name)));
    return this;
  }

  i32(value: number): this {
    this.#body.push(op.i32Const, ...signedLeb(value));
    return this;
  }

  /** i32 arithmetic on the two values on the stack. */
  add(): this {
    this.#body.push(op.i32Add);
    return this;
  }

  sub(): this {
    this.#body.push(op.i32Sub);
    return this;
  }

  mul(): this {
    this.#body.push(op.i32Mul);
    return this;
  }

  /** i32.load from the address on the stack (4-byte aligned). */
  load(): this {
    this.#body.push(op.i32Load, 2, 0);
    return this;
  }

  /** A SIMD instruction; memory ones get their alignment hint, `lane` is store32_lane's lane. */
  simd(code: number, lane?: number): this {
    this.#body.push(0xfd, ...unsignedLeb(code));
    if (memoryOps.has(code)) this.#body.push(0, 0);
    if (code === simd.v128Store32Lane) this.#body.push(lane ?? 0);
    return this;
  }

  /** `name += step` for an i32 local, `step` a constant or another local. */
  increment(name: string, step: number | string): this {
    this.get(name);
    if (typeof step === 'number') this.i32(step);
    else this.get(step);
    return this.add().set(name);
  }

  /**
   * A do-while loop: `body` runs, then `condition` leaves an i32 on the stack and the loop repeats
   * while it is non-zero. Callers guarantee at least one iteration.
   */
  doWhile(body: () => void, condition: () => void): this {
    this.#body.push(op.loop, 0x40);
    body();
    condition();
    this.#body.push(op.brIf, 0, op.end);
    return this;
  }

  /** Pushes `a < b` (unsigned) for two locals. */
  lessThan(a: string, b: string): this {
    this.get(a, b);
    this.#body.push(op.i32LtU);
    return this;
  }

  /** Pushes `name != 0` after decrementing it. */
  decrementNonZero(name: string): this {
    this.get(name).i32(1).sub().tee(name);
    this.#body.push(op.i32Eqz, op.i32Eqz);
    return this;
  }

  encodeType(): number[] {
    return [0x60, ...vector(Array.from({ length: this.paramCount }, () => [I32])), ...vector([])];
  }

  encodeCode(): number[] {
    const locals = vector(this.#localTypes.map((type) => [1, type]));
    const code = [...locals, ...this.#body, op.end];
    return [...unsignedLeb(code.length), ...code];
  }
}

/** A module exporting `memory` (`initialPages` of 64 KiB, growable) and the given functions. */
export function encodeWasmModule(functions: readonly WasmFunctionWriter[], initialPages: number): Uint8Array {
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types = section(1, vector(functions.map((f) => f.encodeType())));
  const declarations = section(3, vector(functions.map((_, i) => unsignedLeb(i))));
  const memory = section(5, vector([[0x00, ...unsignedLeb(initialPages)]]));
  const exportList = [
    [...named('memory'), 0x02, 0],
    ...functions.map((f, i) => [...named(f.name), 0x00, ...unsignedLeb(i)]),
  ];
  const exports = section(7, vector(exportList));
  const code = section(10, vector(functions.map((f) => f.encodeCode())));
  return new Uint8Array([...header, ...types, ...declarations, ...memory, ...exports, ...code]);
}
