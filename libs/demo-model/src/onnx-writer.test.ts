/**
 * @jest-environment <rootDir>/libs/demo-model/src/ort-test-environment.ts
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  encodeAttribute,
  encodeModel,
  encodeOperatorSetId,
  encodeTensor,
  encodeTensorShape,
  encodeVarint,
  encodeValueInfo,
  ProtoWriter,
  TensorDataType,
} from './onnx-writer';

const bytes = (u: Uint8Array): number[] => Array.from(u);
const ascii = (s: string): number[] => Array.from(Buffer.from(s, 'ascii'));

describe('protobuf primitives', () => {
  it('encodes varints little-endian base 128', () => {
    expect(bytes(encodeVarint(0))).toEqual([0x00]);
    expect(bytes(encodeVarint(1))).toEqual([0x01]);
    expect(bytes(encodeVarint(127))).toEqual([0x7f]);
    expect(bytes(encodeVarint(128))).toEqual([0x80, 0x01]);
    expect(bytes(encodeVarint(300))).toEqual([0xac, 0x02]);
    expect(bytes(encodeVarint(2 ** 32))).toEqual([0x80, 0x80, 0x80, 0x80, 0x10]);
    expect(bytes(encodeVarint(2n ** 63n - 1n))).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  });

  it('encodes negative int64 as ten-byte two’s complement', () => {
    expect(bytes(encodeVarint(-1))).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(bytes(encodeVarint(-2n))).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  });

  it('rejects non-integer varints', () => {
    expect(() => encodeVarint(1.5)).toThrow(RangeError);
  });

  it('writes tags, length-delimited fields and fixed32 floats', () => {
    const out = new ProtoWriter()
      .varint(1, 150)
      .string(2, 'hi')
      .bytes(3, Uint8Array.of(1, 2, 3))
      .float(4, 1)
      .finish();
    expect(bytes(out)).toEqual([
      0x08,
      0x96,
      0x01, // field 1, varint 150
      0x12,
      0x02,
      0x68,
      0x69, // field 2, len 2, "hi"
      0x1a,
      0x03,
      0x01,
      0x02,
      0x03, // field 3, len 3
      0x25,
      0x00,
      0x00,
      0x80,
      0x3f, // field 4, fixed32 1.0f
    ]);
  });

  it('uses multi-byte tags for field numbers >= 16 and long lengths', () => {
    expect(bytes(new ProtoWriter().varint(20, 7).finish())).toEqual([0xa0, 0x01, 0x07]);
    const long = new ProtoWriter().bytes(1, new Uint8Array(200)).finish();
    expect(bytes(long.subarray(0, 3))).toEqual([0x0a, 0xc8, 0x01]);
    expect(long.length).toBe(203);
  });
});

describe('ONNX messages', () => {
  it('OperatorSetIdProto: domain = 1, version = 2', () => {
    expect(bytes(encodeOperatorSetId({ domain: '', version: 13 }))).toEqual([0x0a, 0x00, 0x10, 0x0d]);
  });

  it('TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 little-endian', () => {
    const t = encodeTensor({ name: 'w', dataType: 'float', dims: [2], data: [1, -2] });
    expect(bytes(t)).toEqual([
      0x08,
      0x02, // dims: 2
      0x10,
      0x01, // data_type FLOAT
      0x42,
      0x01,
      ...ascii('w'),
      0x4a,
      0x08,
      0x00,
      0x00,
      0x80,
      0x3f,
      0x00,
      0x00,
      0x00,
      0xc0,
    ]);
    const i = encodeTensor({ name: 'i', dataType: 'int64', dims: [1], data: [-1] });
    expect(bytes(i)).toEqual([
      0x08,
      0x01,
      0x10,
      0x07,
      0x42,
      0x01,
      ...ascii('i'),
      0x4a,
      0x08,
      ...new Array<number>(8).fill(0xff),
    ]);
  });

  it('writes a Float32Array as the same raw_data as a number array', () => {
    const values = [1, -2, 0.1, 3.5e-8, -0, 65504];
    const fromArray = encodeTensor({ name: 'w', dataType: 'float', dims: [2, 3], data: values });
    const fromTyped = encodeTensor({ name: 'w', dataType: 'float', dims: [2, 3], data: Float32Array.from(values) });
    expect(bytes(fromTyped)).toEqual(bytes(fromArray));
    // A view into a larger buffer writes only its own elements.
    const view = Float32Array.from([9, ...values, 9]).subarray(1, 7);
    expect(bytes(encodeTensor({ name: 'w', dataType: 'float', dims: [2, 3], data: view }))).toEqual(bytes(fromArray));
  });

  it('rejects tensors whose data does not match their dims', () => {
    expect(() => encodeTensor({ name: 'x', dataType: 'float', dims: [2, 2], data: [1, 2, 3] })).toThrow(RangeError);
  });

  it('TensorShapeProto: dim_value = 1, dim_param = 2', () => {
    expect(bytes(encodeTensorShape(['N', 3]))).toEqual([0x0a, 0x03, 0x12, 0x01, ...ascii('N'), 0x0a, 0x02, 0x08, 0x03]);
  });

  it('ValueInfoProto wraps TypeProto.tensor_type', () => {
    const v = encodeValueInfo({ name: 'x', elemType: TensorDataType.FLOAT, shape: [1] });
    // name; type { tensor_type { elem_type 1; shape { dim { dim_value 1 } } } }
    expect(bytes(v)).toEqual([
      0x0a,
      0x01,
      ...ascii('x'),
      0x12,
      0x0a,
      0x0a,
      0x08,
      0x08,
      0x01,
      0x12,
      0x04,
      0x0a,
      0x02,
      0x08,
      0x01,
    ]);
  });

  it('AttributeProto: value field by kind, type = 20', () => {
    expect(bytes(encodeAttribute({ name: 'a', type: 'int', value: -1 }))).toEqual([
      0x0a,
      0x01,
      ...ascii('a'),
      0x18,
      ...bytes(encodeVarint(-1)),
      0xa0,
      0x01,
      0x02,
    ]);
    expect(bytes(encodeAttribute({ name: 'a', type: 'ints', value: [3, 3] }))).toEqual([
      0x0a,
      0x01,
      ...ascii('a'),
      0x40,
      0x03,
      0x40,
      0x03,
      0xa0,
      0x01,
      0x07,
    ]);
    expect(bytes(encodeAttribute({ name: 'a', type: 'float', value: 0.5 }))).toEqual([
      0x0a,
      0x01,
      ...ascii('a'),
      0x15,
      0x00,
      0x00,
      0x00,
      0x3f,
      0xa0,
      0x01,
      0x01,
    ]);
  });

  it('ModelProto starts with ir_version and contains graph (7) and opset_import (8)', () => {
    const m = encodeModel({
      graph: {
        name: 'g',
        nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['y'] }],
        inputs: [{ name: 'x', elemType: TensorDataType.FLOAT, shape: [1] }],
        outputs: [{ name: 'y', elemType: TensorDataType.FLOAT, shape: [1] }],
      },
    });
    expect(Buffer.isBuffer(m)).toBe(true);
    expect(bytes(m.subarray(0, 3))).toEqual([0x08, 0x08, 0x3a]);
    expect(bytes(m.subarray(m.length - 6))).toEqual([0x42, 0x04, 0x0a, 0x00, 0x10, 0x0d]);
  });

  it('produces a model ONNX Runtime can load and run', async () => {
    const m = encodeModel({
      graph: {
        name: 'g',
        nodes: [{ opType: 'Add', inputs: ['x', 'c'], outputs: ['y'] }],
        initializers: [{ name: 'c', dataType: 'float', dims: [2], data: [10, 20] }],
        inputs: [{ name: 'x', elemType: TensorDataType.FLOAT, shape: ['N', 2] }],
        outputs: [{ name: 'y', elemType: TensorDataType.FLOAT, shape: ['N', 2] }],
      },
    });
    const session = await InferenceSession.create(m);
    const out = await session.run({ x: new Tensor('float32', Float32Array.of(1, 2, 3, 4), [2, 2]) });
    expect(Array.from(out['y']?.data as Float32Array)).toEqual([11, 22, 13, 24]);
  });
});
