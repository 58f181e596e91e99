// Text fields that arrive as strings (multipart form fields, the query string of a raw upload).
// Structured fields such as `metadata` or `labels` can only travel there as JSON text, so a value
// that parses as a JSON object or array is passed on parsed; anything else stays a string.

/** A JSON object or array as its value; any other text unchanged. */
export function formFieldValue(text: string): unknown {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Not JSON after all (say, a label that starts with a bracket): the route validates the text.
    return text;
  }
}

/** Collects fields by name; a name sent twice becomes an array of its values, in order. */
export function createFieldBag(): {
  add(name: string, value: unknown): void;
  toRecord(): Record<string, unknown>;
} {
  // A Map, not an object, so a field named `__proto__` is just a name.
  const values = new Map<string, unknown[]>();
  return {
    add(name, value) {
      const list = values.get(name);
      if (list === undefined) values.set(name, [value]);
      else list.push(value);
    },
    toRecord: () =>
      Object.fromEntries([...values].map(([name, list]) => [name, list.length === 1 ? list[0] : list])),
  };
}

/** The fields of a raw image upload: its query string (express parses it, without nesting). */
export function queryFields(query: unknown): Record<string, unknown> {
  const bag = createFieldBag();
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const list = Array.isArray(value) ? value : [value];
    for (const item of list) bag.add(name, typeof item === 'string' ? formFieldValue(item) : item);
  }
  return bag.toRecord();
}
