/**
 * Minimal ONNX protobuf writer: just enough of onnx.proto (ModelProto and the messages it
 * contains) to serialise small hand-built graphs without a protobuf dependency.
 * Field numbers follow onnx/onnx.proto; repeated scalars are written unpacked, as proto2 does.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

const UINT64_MASK = (1n << 64n) - 1n;

/** Base-128 varint; negative numbers are encoded as 64-bit two's complement (10 bytes), like int64. */
export function encodeVarint(value: number | bigint): Uint8Array {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`varint value must be a safe integer, got ${value}`);
  }
  let v = BigInt(value) & UINT64_MASK;
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Accumulates the fields of one protobuf message in the order they are written. */
export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];

  private tag(field: number, wireType: number): void {
    this.parts.push(encodeVarint(field * 8 + wireType));
  }

  varint(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.parts.push(encodeVarint(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.parts.push(b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.parts.push(encodeVarint(data.length), data);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  finish(): Uint8Array {
    return concat(this.parts);
  }
}

/** onnx.TensorProto.DataType values used here. */
export const TensorDataType = { FLOAT: 1, INT64: 7 } as const;
export type TensorDataTypeValue = (typeof TensorDataType)[keyof typeof TensorDataType];

/** A fixed size or a symbolic (dynamic) dimension name such as "N". */
export type Dim = number | string;

export type TensorDef =
  | { name: string; dataType: 'float'; dims: readonly number[]; data: Float32Array | readonly number[] }
  | { name: string; dataType: 'int64'; dims: readonly number[]; data: BigInt64Array | readonly (number | bigint)[] };

export interface ValueInfoDef {
  name: string;
  elemType: TensorDataTypeValue;
  shape: readonly Dim[];
  docString?: string;
}

export type AttributeDef =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number | bigint }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'floats'; value: readonly number[] }
  | { name: string; type: 'ints'; value: readonly (number | bigint)[] }
  | { name: string; type: 'tensor'; value: TensorDef };

export interface NodeDef {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: readonly AttributeDef[];
  docString?: string;
}

export interface GraphDef {
  name: string;
  nodes: readonly NodeDef[];
  inputs: readonly ValueInfoDef[];
  outputs: readonly ValueInfoDef[];
  initializers?: readonly TensorDef[];
  valueInfo?: readonly ValueInfoDef[];
  docString?: string;
}

export interface OperatorSetId {
  domain: string;
  version: number;
}

export interface ModelDef {
  graph: GraphDef;
  /** Defaults to 8. */
  irVersion?: number;
  /** Defaults to the default ("") domain at opset 13. */
  opsetImports?: readonly OperatorSetId[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  metadata?: Readonly<Record<string, string>>;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// onnx.AttributeProto.AttributeType
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

export function encodeTensor(t: TensorDef): Uint8Array {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) {
    throw new RangeError(`tensor ${t.name}: ${t.data.length} values for dims [${t.dims.join(', ')}]`);
  }
  const w = new ProtoWriter();
  for (const d of t.dims) w.varint(1, d); // dims
  let raw: Uint8Array;
  if (t.dataType === 'float') {
    w.varint(2, TensorDataType.FLOAT);
    if (t.data instanceof Float32Array && LITTLE_ENDIAN) {
      // raw_data is little-endian float32: on a little-endian host that is the array's own bytes,
      // which keeps writing millions of weights (a ResNet-18) to a single copy.
      raw = new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
    } else {
      raw = new Uint8Array(count * 4);
      const view = new DataView(raw.buffer);
      for (let i = 0; i < count; i++) view.setFloat32(i * 4, t.data[i] ?? 0, true);
    }
  } else {
    w.varint(2, TensorDataType.INT64);
    raw = new Uint8Array(count * 8);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < count; i++) view.setBigInt64(i * 8, BigInt(t.data[i] ?? 0), true);
  }
  w.string(8, t.name); // name
  w.bytes(9, raw); // raw_data
  return w.finish();
}

/** TensorShapeProto: each Dimension is dim_value (1) or dim_param (2). */
export function encodeTensorShape(shape: readonly Dim[]): Uint8Array {
  const w = new ProtoWriter();
  for (const d of shape) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    w.bytes(1, dim.finish());
  }
  return w.finish();
}

/** TypeProto with its tensor_type (1) member: TypeProto.Tensor { elem_type = 1, shape = 2 }. */
export function encodeTensorType(elemType: TensorDataTypeValue, shape: readonly Dim[]): Uint8Array {
  const tensor = new ProtoWriter().varint(1, elemType).bytes(2, encodeTensorShape(shape)).finish();
  return new ProtoWriter().bytes(1, tensor).finish();
}

export function encodeValueInfo(v: ValueInfoDef): Uint8Array {
  const w = new ProtoWriter().string(1, v.name).bytes(2, encodeTensorType(v.elemType, v.shape));
  if (v.docString !== undefined) w.string(3, v.docString);
  return w.finish();
}

export function encodeAttribute(a: AttributeDef): Uint8Array {
  const w = new ProtoWriter().string(1, a.name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.varint(3, a.value);
      break;
    case 'string':
      w.string(4, a.value);
      break;
    case 'tensor':
      w.bytes(5, encodeTensor(a.value));
      break;
    case 'floats':
      for (const f of a.value) w.float(7, f);
      break;
    case 'ints':
      for (const i of a.value) w.varint(8, i);
      break;
  }
  w.varint(20, ATTRIBUTE_TYPE[a.type]);
  return w.finish();
}

export function encodeNode(n: NodeDef): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name !== undefined) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes ?? []) w.bytes(5, encodeAttribute(a));
  if (n.docString !== undefined) w.string(6, n.docString);
  if (n.domain !== undefined) w.string(7, n.domain);
  return w.finish();
}

export function encodeGraph(g: GraphDef): Uint8Array {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.bytes(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers ?? []) w.bytes(5, encodeTensor(t));
  if (g.docString !== undefined) w.string(10, g.docString);
  for (const v of g.inputs) w.bytes(11, encodeValueInfo(v));
  for (const v of g.outputs) w.bytes(12, encodeValueInfo(v));
  for (const v of g.valueInfo ?? []) w.bytes(13, encodeValueInfo(v));
  return w.finish();
}

export function encodeOperatorSetId(o: OperatorSetId): Uint8Array {
  return new ProtoWriter().string(1, o.domain).varint(2, o.version).finish();
}

export function encodeModel(m: ModelDef): Buffer {
  const w = new ProtoWriter().varint(1, m.irVersion ?? 8);
  if (m.producerName !== undefined) w.string(2, m.producerName);
  if (m.producerVersion !== undefined) w.string(3, m.producerVersion);
  if (m.domain !== undefined) w.string(4, m.domain);
  if (m.modelVersion !== undefined) w.varint(5, m.modelVersion);
  if (m.docString !== undefined) w.string(6, m.docString);
  w.bytes(7, encodeGraph(m.graph));
  for (const o of m.opsetImports ?? [{ domain: '', version: 13 }]) w.bytes(8, encodeOperatorSetId(o));
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    // StringStringEntryProto { key = 1, value = 2 } in metadata_props (14)
    w.bytes(14, new ProtoWriter().string(1, key).string(2, value).finish());
  }
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
