export { ObjectStore } from './object-store';
export type { ObjectStoreConfig, PutOptions } from './object-store';
export { ObjectNotFoundError, ObjectTooLargeError } from './errors';
