export { Client, createUser, imageForm, modelForm } from './client';
export type { ApiResponse } from './client';
