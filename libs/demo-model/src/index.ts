export * from './onnx-writer';
export * from './demo-classifier';
export * from './samples';
export * from './cnn-models';
export * from './xray';
