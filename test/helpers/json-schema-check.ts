// The JSON Schema keywords helm/clipmod/values.schema.json uses, checked the way Helm does before it
// renders. A keyword this file does not know is an error, so the schema cannot silently rely on
// something the test never checks.

export type JsonSchema = { [keyword: string]: unknown };

const annotations = new Set(['$schema', 'title', 'description', 'default', 'examples', '$comment']);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (Number.isInteger(value)) return 'integer';
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

type Check = (schema: JsonSchema, value: unknown, path: string, root: JsonSchema) => string[];

const checks: Record<string, Check> = {
  type: (schema, value, path) => {
    const types = ([] as string[]).concat(schema.type as string | string[]);
    return types.some((type) => matchesType(value, type)) ? [] : [`${path}: expected ${types.join(' or ')}`];
  },
  enum: (schema, value, path) =>
    (schema.enum as unknown[]).includes(value)
      ? []
      : [`${path}: must be one of ${JSON.stringify(schema.enum)}`],
  minimum: (schema, value, path) =>
    typeof value === 'number' && value < (schema.minimum as number)
      ? [`${path}: below ${schema.minimum}`]
      : [],
  maximum: (schema, value, path) =>
    typeof value === 'number' && value > (schema.maximum as number)
      ? [`${path}: above ${schema.maximum}`]
      : [],
  minLength: (schema, value, path) =>
    typeof value === 'string' && value.length < (schema.minLength as number) ? [`${path}: too short`] : [],
  maxLength: (schema, value, path) =>
    typeof value === 'string' && value.length > (schema.maxLength as number) ? [`${path}: too long`] : [],
  pattern: (schema, value, path) =>
    typeof value === 'string' && !new RegExp(schema.pattern as string, 'u').test(value)
      ? [`${path}: does not match ${schema.pattern}`]
      : [],
  minItems: (schema, value, path) =>
    Array.isArray(value) && value.length < (schema.minItems as number) ? [`${path}: too few items`] : [],
  items: (schema, value, path, root) =>
    Array.isArray(value)
      ? value.flatMap((item, n) => validate(schema.items as JsonSchema, item, `${path}[${n}]`, root))
      : [],
  required: (schema, value, path) =>
    isObject(value)
      ? (schema.required as string[])
          .filter((key) => !(key in value))
          .map((key) => `${path}.${key}: required`)
      : [],
  properties: (schema, value, path, root) => {
    if (!isObject(value)) return [];
    const properties = schema.properties as Record<string, JsonSchema>;
    return Object.entries(value).flatMap(([key, item]) =>
      properties[key] ? validate(properties[key], item, `${path}.${key}`, root) : [],
    );
  },
  additionalProperties: (schema, value, path, root) => {
    if (!isObject(value)) return [];
    const known = (schema.properties ?? {}) as Record<string, unknown>;
    const extra = Object.entries(value).filter(([key]) => !(key in known));
    if (schema.additionalProperties === false) return extra.map(([key]) => `${path}.${key}: not allowed`);
    if (schema.additionalProperties === true) return [];
    return extra.flatMap(([key, item]) =>
      validate(schema.additionalProperties as JsonSchema, item, `${path}.${key}`, root),
    );
  },
  propertyNames: (schema, value, path, root) =>
    isObject(value)
      ? Object.keys(value).flatMap((key) =>
          validate(schema.propertyNames as JsonSchema, key, `${path}{${key}}`, root),
        )
      : [],
  anyOf: (schema, value, path, root) =>
    (schema.anyOf as JsonSchema[]).some((option) => validate(option, value, path, root).length === 0)
      ? []
      : [`${path}: matches none of anyOf`],
  $ref: (schema, value, path, root) => validate(resolve(root, schema.$ref as string), value, path, root),
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function resolve(root: JsonSchema, ref: string): JsonSchema {
  if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown>)[part];
  if (!isObject(node)) throw new Error(`$ref ${ref} does not resolve`);
  return node;
}

/** Every violation as "path: problem"; empty when the value is valid. */
export function validate(
  schema: JsonSchema,
  value: unknown,
  path = '$',
  root: JsonSchema = schema,
): string[] {
  return Object.keys(schema).flatMap((keyword) => {
    if (annotations.has(keyword) || keyword === 'definitions' || keyword === '$defs') return [];
    const check = checks[keyword];
    if (!check) throw new Error(`json-schema-check does not implement "${keyword}" (at ${path})`);
    return check(schema, value, path, root);
  });
}
