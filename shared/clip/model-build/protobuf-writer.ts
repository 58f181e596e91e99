// The small part of protocol-buffers encoding that writing ONNX files needs. A message is kept as a list
// of chunks rather than one buffer so that hundreds of megabytes of weights are never copied into a
// parent message: nesting only prepends a tag and a length, and big payloads can be produced lazily at
// write time.
import { open } from 'node:fs/promises';

/** Bytes whose length is known up front but which are only materialised when written. */
export type LazyBytes = { readonly byteLength: number; produce(): Uint8Array };
export type ProtoChunk = Uint8Array | LazyBytes;

const wireVarint = 0;
const wireLengthDelimited = 2;
const wireFixed32 = 5;
const textEncoder = new TextEncoder();

/** A protobuf message under construction; fields are appended in the order they are written. */
export class ProtoMessage {
  #chunks: ProtoChunk[] = [];
  #pending: number[] = [];
  #byteLength = 0;

  get byteLength(): number {
    return this.#byteLength;
  }

  /** int64/int32/uint64/enum/bool fields; negative values take ten bytes, as protobuf requires. */
  varint(field: number, value: number | bigint): this {
    this.#tag(field, wireVarint);
    this.#pushBytes(encodeVarint(value));
    return this;
  }

  float32(field: number, value: number): this {
    this.#tag(field, wireFixed32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.#pushBytes(bytes);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  bytes(field: number, data: ProtoChunk): this {
    this.#tag(field, wireLengthDelimited);
    this.#pushBytes(encodeVarint(data.byteLength));
    this.#pushChunk(data);
    return this;
  }

  message(field: number, child: ProtoMessage): this {
    this.#tag(field, wireLengthDelimited);
    this.#pushBytes(encodeVarint(child.byteLength));
    for (const chunk of child.chunks()) this.#pushChunk(chunk);
    return this;
  }

  /** A packed repeated varint field (proto3's default encoding for repeated scalars). */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const body = values.flatMap((value) => [...encodeVarint(value)]);
    return this.bytes(field, Uint8Array.from(body));
  }

  packedFloat32(field: number, values: readonly number[]): this {
    return this.bytes(field, new Uint8Array(Float32Array.from(values).buffer));
  }

  /** The encoded message as an ordered list of chunks; concatenated they are the wire bytes. */
  chunks(): readonly ProtoChunk[] {
    this.#flushPending();
    return this.#chunks;
  }

  #tag(field: number, wireType: number): void {
    this.#pushBytes(encodeVarint(field * 8 + wireType));
  }

  #pushBytes(bytes: Iterable<number>): void {
    for (const byte of bytes) {
      this.#pending.push(byte);
      this.#byteLength += 1;
    }
  }

  #pushChunk(chunk: ProtoChunk): void {
    // Small payloads join the pending bytes so that a file is not written in thousands of tiny pieces.
    if (chunk instanceof Uint8Array && chunk.byteLength <= 256) {
      this.#pushBytes(chunk);
      return;
    }
    this.#flushPending();
    this.#chunks.push(chunk);
    this.#byteLength += chunk.byteLength;
  }

  #flushPending(): void {
    if (this.#pending.length === 0) return;
    this.#chunks.push(Uint8Array.from(this.#pending));
    this.#pending = [];
  }
}

/** Base-128 varint; negative numbers are encoded as their 64-bit two's complement. */
export function encodeVarint(value: number | bigint): Uint8Array {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`varint needs a safe integer, got ${value}`);
  }
  let rest = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return Uint8Array.from(bytes);
}

const writeBufferBytes = 4 * 1024 * 1024;

/** Streams a message to `path`, materialising lazy chunks one at a time to bound peak memory. */
export async function writeProtoFile(path: string, message: ProtoMessage): Promise<number> {
  const file = await open(path, 'w');
  try {
    const buffer = new Uint8Array(writeBufferBytes);
    let used = 0;
    const flush = async () => {
      if (used > 0) await file.write(buffer, 0, used);
      used = 0;
    };
    for (const chunk of message.chunks()) {
      const bytes = chunk instanceof Uint8Array ? chunk : produceChecked(chunk);
      if (used + bytes.byteLength <= buffer.byteLength) {
        buffer.set(bytes, used);
        used += bytes.byteLength;
        continue;
      }
      await flush();
      await file.write(bytes, 0, bytes.byteLength);
    }
    await flush();
    return message.byteLength;
  } finally {
    await file.close();
  }
}

function produceChecked(chunk: LazyBytes): Uint8Array {
  const bytes = chunk.produce();
  // A wrong length would silently corrupt every length prefix above it.
  if (bytes.byteLength !== chunk.byteLength) {
    throw new Error(`lazy chunk produced ${bytes.byteLength} bytes, announced ${chunk.byteLength}`);
  }
  return bytes;
}

/** Concatenates a message's chunks in memory (for small messages and tests). */
export function protoBytes(message: ProtoMessage): Uint8Array {
  const out = new Uint8Array(message.byteLength);
  let offset = 0;
  for (const chunk of message.chunks()) {
    const bytes = chunk instanceof Uint8Array ? chunk : produceChecked(chunk);
    out.set(bytes, offset);
    offset += bytes.byteLength;
  }
  return out;
}
