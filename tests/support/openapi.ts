import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

/**
 * A validator for the gateway's OpenAPI document, which it holds as `openapi.json`: compile
 * `{ $ref: 'openapi.json#/components/schemas/…' }` or a response's schema by its path.
 */
export function openapiValidator(document: object): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  // Uploads and downloads: bytes, not JSON to validate.
  ajv.addFormat('binary', true);
  ajv.addSchema(document, 'openapi.json');
  return ajv;
}
