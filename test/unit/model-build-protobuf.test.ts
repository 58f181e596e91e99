import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { float, int, ints, OnnxGraph } from '../../shared/clip/model-build/onnx-graph.ts';
import { encodeModel } from '../../shared/clip/model-build/onnx-model-encoder.ts';
import {
  encodeVarint,
  ProtoMessage,
  protoBytes,
  writeProtoFile,
} from '../../shared/clip/model-build/protobuf-writer.ts';
import { createOnnxSession } from '../../shared/clip/onnx-runtime.ts';

const scratchDirs: string[] = [];

afterAll(async () => {
  await Promise.all(scratchDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function scratchFile(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'clipmod-protobuf-'));
  scratchDirs.push(dir);
  return join(dir, name);
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('protobuf encoding', () => {
  it('encodes varints as base-128 little-endian groups', () => {
    expect(hex(encodeVarint(0))).toBe('00');
    expect(hex(encodeVarint(127))).toBe('7f');
    expect(hex(encodeVarint(150))).toBe('9601');
    expect(hex(encodeVarint(300))).toBe('ac02');
    expect(hex(encodeVarint(Number.MAX_SAFE_INTEGER))).toBe('ffffffffffffff0f');
  });

  it('encodes negative int64 values as ten-byte two’s complement', () => {
    expect(hex(encodeVarint(-1))).toBe('ffffffffffffffffff01');
    expect(hex(encodeVarint(-2n))).toBe('feffffffffffffffff01');
  });

  it('refuses numbers that are not safe integers', () => {
    expect(() => encodeVarint(1.5)).toThrow(RangeError);
    expect(() => encodeVarint(2 ** 60)).toThrow(RangeError);
  });

  it('matches the worked examples of the protobuf encoding guide', () => {
    expect(hex(protoBytes(new ProtoMessage().varint(1, 150)))).toBe('089601');
    expect(hex(protoBytes(new ProtoMessage().string(2, 'testing')))).toBe('120774657374696e67');
    const child = new ProtoMessage().varint(1, 150);
    expect(hex(protoBytes(new ProtoMessage().message(3, child)))).toBe('1a03089601');
    expect(hex(protoBytes(new ProtoMessage().packedVarints(4, [3, 270, 86942])))).toBe('2206038e029ea705');
  });

  it('writes float32 fields as little-endian fixed32', () => {
    expect(hex(protoBytes(new ProtoMessage().float32(3, 1.5)))).toBe('1d0000c03f');
  });

  it('keeps byteLength equal to the encoded size across nesting and large payloads', () => {
    const payload = Uint8Array.from({ length: 1000 }, (_, index) => index % 251);
    const inner = new ProtoMessage().string(1, 'weights').bytes(2, payload);
    const outer = new ProtoMessage().varint(1, 8).message(7, inner).message(7, inner);
    const bytes = protoBytes(outer);
    expect(bytes.byteLength).toBe(outer.byteLength);
    // 08 08, then tag 0x3a (field 7, length-delimited) and the inner length 1012 (f4 07); the payload
    // follows the inner name field (9 bytes) and its own tag and length (12 e8 07).
    expect(hex(bytes.subarray(2, 5))).toBe('3af407');
    expect(bytes.subarray(17, 1017)).toEqual(payload);
  });

  it('produces lazy payloads only when writing, and writes the same bytes as protoBytes', async () => {
    let produced = 0;
    const lazy = {
      byteLength: 3 * 1024 * 1024,
      produce: () => {
        produced += 1;
        return new Uint8Array(3 * 1024 * 1024).fill(7);
      },
    };
    const message = new ProtoMessage().string(1, 'head').bytes(9, lazy).string(2, 'tail');
    expect(produced).toBe(0);
    const path = await scratchFile('lazy.bin');
    await writeProtoFile(path, message);
    expect(produced).toBe(1);
    expect((await readFile(path)).equals(Buffer.from(protoBytes(message)))).toBe(true);
  });

  it('fails loudly when a lazy payload has a different length than announced', async () => {
    const message = new ProtoMessage().bytes(9, { byteLength: 8, produce: () => new Uint8Array(4) });
    await expect(writeProtoFile(await scratchFile('bad.bin'), message)).rejects.toThrow(
      /produced 4 bytes, announced 8/,
    );
  });
});

describe('ONNX model encoding', () => {
  it('writes a graph that onnxruntime loads and runs with the intended attributes', async () => {
    const graph = new OnnxGraph('probe');
    const x = graph.addInput('x', 'float32', ['rows', 3]);
    const offset = graph.addConstant('offset', [3], Float32Array.of(1, -2, 0.5));
    const shifted = graph.op('Add', [x, offset]);
    const transposed = graph.op('Transpose', [shifted], { perm: ints([1, 0]) });
    const leaky = graph.op('LeakyRelu', [transposed], { alpha: float(0.25) });
    const flat = graph.op('Reshape', [leaky, graph.addInt64s('flat_shape', [-1])]);
    graph.op('ArgMax', [flat], { axis: int(0), keepdims: int(0) }, 'best');
    graph.addOutput('best', 'int64', []);
    graph.opMulti('Identity', [leaky], 1, {}, ['y']);
    graph.addOutput('y', 'float32', [3, 'rows']);
    const path = await scratchFile('probe.onnx');
    await writeProtoFile(path, encodeModel(graph, { producerName: 'clipmod-test', producerVersion: '0' }));

    const session = await createOnnxSession(path, { executionProviders: ['cpu'] });
    try {
      const input = {
        elementType: 'float32',
        data: Float32Array.of(0, 0, 0, 4, 4, -4),
        dims: [2, 3],
      } as const;
      const result = await session.run({ x: input }, ['y', 'best']);
      expect(result.y!.dims).toEqual([3, 2]);
      expect(Array.from(result.y!.data as Float32Array)).toEqual([1, 5, -0.5, 2, 0.5, -0.875]);
      expect(result.best!.data).toEqual(BigInt64Array.of(1n));
    } finally {
      await session.close();
    }
  });

  it('refuses two values with the same name in one graph', () => {
    const graph = new OnnxGraph('dupes');
    graph.addInput('x', 'float32', [1]);
    expect(() => graph.addInput('x', 'float32', [1])).toThrow(/duplicate value name x/);
    expect(graph.uniqueName('x')).toBe('x_2');
  });
});
