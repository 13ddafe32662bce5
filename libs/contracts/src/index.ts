export { InputSpec, inputSpecProblem, inputShape } from './input-spec';
export {
  MESSAGE_VERSION,
  ImageFormat,
  JobMessage,
  ResultMessage,
  Classification,
  LabelScore,
  ProcessingError,
  Timings,
  decodeMessage,
  encodeMessage,
} from './messages';
export type { Decoded } from './messages';
export { newDispatchToken, hashSecret } from './dispatch-token';
