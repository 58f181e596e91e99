// Serialises an OnnxGraph as an ONNX ModelProto. Field numbers are those of onnx/onnx.proto; only the
// fields clipmod's builders use are written. Weights go out as little-endian float32 raw_data.
import { endianness } from 'node:os';
import type {
  AttributeValue,
  Dim,
  ElementType,
  GraphNode,
  Initializer,
  OnnxGraph,
  ValueInfo,
} from './onnx-graph.ts';
import { ProtoMessage } from './protobuf-writer.ts';

/** IR version 8 is ONNX 1.10+, which every onnxruntime since 1.10 reads; opset 17 has LayerNormalization. */
export const onnxIrVersion = 8;
export const onnxOpsetVersion = 17;

/** TensorProto.DataType values. */
const dataTypeCode: Record<ElementType, number> = { float32: 1, int32: 6, int64: 7 };

/** AttributeProto.AttributeType values. */
const attributeTypeCode = { float: 1, int: 2, floats: 6, ints: 7 } as const;

export type ModelMetadata = { producerName: string; producerVersion: string; docString?: string };

export function encodeModel(graph: OnnxGraph, metadata: ModelMetadata): ProtoMessage {
  // raw_data is little-endian by definition while typed arrays use the host order: refuse a big-endian
  // host rather than write a model that loads with garbage weights.
  if (endianness() !== 'LE') throw new Error('clipmod model build needs a little-endian host');
  const model = new ProtoMessage()
    .varint(1, onnxIrVersion)
    .string(2, metadata.producerName)
    .string(3, metadata.producerVersion);
  if (metadata.docString !== undefined) model.string(6, metadata.docString);
  model.message(7, encodeGraph(graph));
  // The default domain ("") is the standard ai.onnx operator set.
  model.message(8, new ProtoMessage().string(1, '').varint(2, onnxOpsetVersion));
  return model;
}

function encodeGraph(graph: OnnxGraph): ProtoMessage {
  const message = new ProtoMessage();
  for (const node of graph.nodes) message.message(1, encodeNode(node));
  message.string(2, graph.name);
  for (const initializer of graph.initializers) message.message(5, encodeInitializer(initializer));
  for (const input of graph.inputs) message.message(11, encodeValueInfo(input));
  for (const output of graph.outputs) message.message(12, encodeValueInfo(output));
  return message;
}

function encodeNode(node: GraphNode): ProtoMessage {
  const message = new ProtoMessage();
  for (const input of node.inputs) message.string(1, input);
  for (const output of node.outputs) message.string(2, output);
  message.string(3, node.name).string(4, node.opType);
  for (const [name, value] of Object.entries(node.attributes))
    message.message(5, encodeAttribute(name, value));
  return message;
}

function encodeAttribute(name: string, attribute: AttributeValue): ProtoMessage {
  const message = new ProtoMessage().string(1, name);
  switch (attribute.kind) {
    case 'float':
      message.float32(2, attribute.value);
      break;
    case 'int':
      message.varint(3, attribute.value);
      break;
    case 'floats':
      message.packedFloat32(7, attribute.value);
      break;
    case 'ints':
      message.packedVarints(8, attribute.value);
      break;
  }
  return message.varint(20, attributeTypeCode[attribute.kind]);
}

function encodeInitializer(initializer: Initializer): ProtoMessage {
  const bytesPerElement = initializer.elementType === 'int64' ? 8 : 4;
  const byteLength = initializer.dims.reduce((product, dim) => product * dim, bytesPerElement);
  const rawData = {
    byteLength,
    produce: () => {
      const values = initializer.produce();
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    },
  };
  return new ProtoMessage()
    .packedVarints(1, initializer.dims)
    .varint(2, dataTypeCode[initializer.elementType])
    .string(8, initializer.name)
    .bytes(9, rawData);
}

function encodeValueInfo(info: ValueInfo): ProtoMessage {
  const shape = new ProtoMessage();
  for (const dim of info.dims) shape.message(1, encodeDimension(dim));
  const tensorType = new ProtoMessage().varint(1, dataTypeCode[info.elementType]).message(2, shape);
  const type = new ProtoMessage().message(1, tensorType);
  return new ProtoMessage().string(1, info.name).message(2, type);
}

function encodeDimension(dim: Dim): ProtoMessage {
  return typeof dim === 'number' ? new ProtoMessage().varint(1, dim) : new ProtoMessage().string(2, dim);
}
