// Makes kubeconform's JSON schemas offline: one standalone, strict file per kind, named the way
// kubeconform looks them up ({kind}-{group's first label}-{version}.json, {kind}-{version}.json for
// the core group), from the Kubernetes OpenAPI v2 document and from CRD YAML files. Strict: an
// object that lists its properties accepts no other (a typo in a manifest fails), as the schemas
// of kubeconform's own openapi2jsonschema.py with --strict.
//   tsx infra/k8s/openapi-to-jsonschema.ts OUT_DIR swagger.json [crd.yaml…]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

type Schema = { [key: string]: unknown };

const isSchema = (value: unknown): value is Schema =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Kubernetes types that YAML writes as either a string or a number. */
const INT_OR_STRING = { oneOf: [{ type: 'string' }, { type: 'integer' }] };
const QUANTITY = { oneOf: [{ type: 'string' }, { type: 'number' }] };

export function schemaFileName(kind: string, group: string, version: string): string {
  const suffix = group === '' ? `-${version}` : `-${group.split('.')[0]}-${version}`;
  return `${kind.toLowerCase()}${suffix.toLowerCase()}.json`;
}

/**
 * The schema with every $ref inlined (a type that contains itself, like JSONSchemaProps, becomes
 * "anything" at the repeat), Kubernetes' string-or-number types as oneOf, and closed objects.
 */
export function standalone(schema: Schema, definitions: Record<string, Schema>, seen: string[] = []): Schema {
  const ref = schema.$ref;
  if (typeof ref === 'string') {
    const name = ref.replace('#/definitions/', '');
    if (name === 'io.k8s.apimachinery.pkg.util.intstr.IntOrString') return { ...INT_OR_STRING };
    if (name === 'io.k8s.apimachinery.pkg.api.resource.Quantity') return { ...QUANTITY };
    const target = definitions[name];
    if (!target) throw new Error(`unknown $ref ${ref}`);
    if (seen.includes(name)) return {};
    const rest = { ...schema };
    delete rest.$ref;
    return standalone({ ...target, ...rest }, definitions, [...seen, name]);
  }
  if (schema.format === 'int-or-string' || schema['x-kubernetes-int-or-string'] === true) {
    return { ...INT_OR_STRING, ...(schema.description ? { description: schema.description } : {}) };
  }
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' && isSchema(value)) {
      out.properties = Object.fromEntries(
        Object.entries(value).map(([p, s]) => [p, isSchema(s) ? standalone(s, definitions, seen) : s]),
      );
    } else if ((key === 'items' || key === 'additionalProperties' || key === 'not') && isSchema(value)) {
      out[key] = standalone(value, definitions, seen);
    } else if ((key === 'allOf' || key === 'anyOf' || key === 'oneOf') && Array.isArray(value)) {
      out[key] = value.map((s: unknown) => (isSchema(s) ? standalone(s, definitions, seen) : s));
    } else if (key !== 'x-kubernetes-group-version-kind') {
      out[key] = value;
    }
  }
  if (schema.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  if (out.properties && out.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  return out;
}

interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

function fromOpenApi(file: string, write: (name: string, schema: Schema) => void): void {
  const definitions = (JSON.parse(readFileSync(file, 'utf8')) as { definitions: Record<string, Schema> }).definitions;
  for (const [name, definition] of Object.entries(definitions)) {
    const kinds = definition['x-kubernetes-group-version-kind'] as GroupVersionKind[] | undefined;
    if (!kinds) continue;
    const schema = standalone(definition, definitions, [name]);
    for (const gvk of kinds) write(schemaFileName(gvk.kind, gvk.group, gvk.version), schema);
  }
}

interface CustomResourceDefinition {
  kind?: string;
  spec?: {
    group: string;
    names: { kind: string };
    versions: { name: string; schema?: { openAPIV3Schema?: Schema } }[];
  };
}

function fromCrd(file: string, write: (name: string, schema: Schema) => void): void {
  for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const crd = document.toJS() as CustomResourceDefinition | null;
    if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
    for (const version of crd.spec.versions) {
      const schema = version.schema?.openAPIV3Schema;
      if (!schema) continue;
      write(schemaFileName(crd.spec.names.kind, crd.spec.group, version.name), standalone(schema, {}));
    }
  }
}

function main(): void {
  const [outDir, openApi, ...crds] = process.argv.slice(2);
  if (!outDir || !openApi) throw new Error('usage: openapi-to-jsonschema.ts OUT_DIR swagger.json [crd.yaml…]');
  mkdirSync(outDir, { recursive: true });
  let count = 0;
  const write = (name: string, schema: Schema) => {
    writeFileSync(join(outDir, name), JSON.stringify(schema));
    count++;
  };
  fromOpenApi(openApi, write);
  for (const crd of crds) fromCrd(crd, write);
  console.log(`${count} schemas written to ${outDir}`);
}

if (require.main === module) main();
