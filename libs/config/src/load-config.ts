import type { Static, TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export interface ConfigIssue {
  variable: string;
  message: string;
}

/** Thrown once at boot when the environment does not satisfy a service's schema. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  constructor(readonly issues: ConfigIssue[]) {
    super(`invalid configuration: ${issues.map((i) => `${i.variable} ${i.message}`).join('; ')}`);
  }
}

/**
 * Validates environment variables against a TypeBox object schema: strings are converted to
 * the declared types, defaults applied, unknown variables ignored. Every problem is reported
 * with the variable's name, never its value (it may be a secret).
 */
export function loadConfig<T extends TObject>(
  schema: T,
  source: Record<string, string | undefined> = process.env,
): Static<T> {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties)) {
    const raw = source[key];
    // An empty variable means "not set", so defaults and required checks apply to it.
    if (raw !== undefined && raw !== '') picked[key] = raw;
  }
  const withDefaults = Value.Default(schema, picked);
  const converted = Value.Convert(schema, withDefaults) as Record<string, unknown>;
  // TypeBox's conversion is lenient with numbers (parseInt: "2.5" → 2, "1e3" → 1, "0x10" → 16,
  // "true" → 1); a number is read here only when written as one, anything else is refused below.
  for (const key of Object.keys(schema.properties)) {
    const raw = source[key];
    const type = (schema.properties[key] as { type?: unknown }).type;
    if (raw !== undefined && raw !== '' && (type === 'integer' || type === 'number')) {
      converted[key] = strictNumber(raw, type);
    }
  }
  if (Value.Check(schema, converted)) return converted;

  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, converted)) {
    const variable = error.path.replace(/^\//, '').split('/')[0] || '(environment)';
    if (seen.has(variable)) continue;
    seen.add(variable);
    issues.push({
      variable,
      message: picked[variable] === undefined ? 'is required' : describe(error.message, error.schema),
    });
  }
  throw new ConfigError(issues);
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** The number a variable spells in decimal, or the text as it is (so the schema check refuses it). */
function strictNumber(raw: string, type: 'integer' | 'number'): number | string {
  const text = raw.trim();
  return (type === 'integer' ? INTEGER : DECIMAL).test(text) ? Number(text) : raw;
}

function describe(message: string, schema: unknown): string {
  const s = schema as { description?: string };
  return s.description ? `${message.toLowerCase()} (${s.description})` : message.toLowerCase();
}
