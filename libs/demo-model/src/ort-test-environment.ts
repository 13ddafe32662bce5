import NodeEnvironment from 'jest-environment-node';

/**
 * Jest environment for tests that run onnxruntime-node. Use with the docblock
 * `@jest-environment <rootDir>/libs/demo-model/src/ort-test-environment.ts`.
 *
 * Why: the native binding creates output typed arrays in Node's main realm, while
 * onnxruntime-common (loaded inside Jest's vm sandbox) validates them with `instanceof` against
 * the sandbox's constructors, so session.run() throws "A float32 tensor's data must be type of
 * function Float32Array()". Sharing the main realm's typed-array constructors avoids that.
 */
export default class OrtTestEnvironment extends NodeEnvironment {
  constructor(...args: ConstructorParameters<typeof NodeEnvironment>) {
    super(...args);
    Object.assign(this.global, {
      Float32Array,
      Float64Array,
      Int8Array,
      Int16Array,
      Int32Array,
      Uint8Array,
      Uint8ClampedArray,
      Uint16Array,
      Uint32Array,
      BigInt64Array,
      BigUint64Array,
    });
  }
}
