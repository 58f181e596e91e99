// A parser for the YAML this repository writes (compose, Helm values, Prometheus and Grafana
// provisioning): block mappings and sequences, plain and quoted scalars, one-line flow collections,
// comments. Anchors, tags, block scalars and multi-line flow collections are refused, not guessed:
// the project has no YAML dependency, and its deployment files stay inside this subset.

type Line = { indent: number; text: string; number: number };

export type YamlValue = null | boolean | number | string | YamlValue[] | { [key: string]: YamlValue };

class YamlSubsetError extends Error {}

function fail(line: Line | undefined, message: string): never {
  throw new YamlSubsetError(`line ${line?.number ?? 'end'}: ${message}`);
}

/** Cuts a trailing comment: `#` at the start or after a space, outside quotes. */
function stripComment(text: string): string {
  let quote = '';
  for (let n = 0; n < text.length; n++) {
    const c = text[n]!;
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (n === 0 || text[n - 1] === ' ')) return text.slice(0, n).trimEnd();
  }
  return text.trimEnd();
}

function toLines(source: string): Line[] {
  return source.split('\n').flatMap((raw, n) => {
    if (raw.includes('\t')) fail({ indent: 0, text: raw, number: n + 1 }, 'tab character');
    const text = stripComment(raw);
    if (text.trim() === '' || text.trim() === '---') return [];
    return [{ indent: text.length - text.trimStart().length, text: text.trim(), number: n + 1 }];
  });
}

function unquote(text: string, line?: Line): string {
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) fail(line, `unterminated quote: ${text}`);
    return text.slice(1, -1).replaceAll("''", "'");
  }
  try {
    return JSON.parse(text) as string;
  } catch {
    return fail(line, `unsupported double-quoted scalar: ${text}`);
  }
}

function scalar(text: string, line?: Line): YamlValue {
  if (text.startsWith('"') || text.startsWith("'")) return unquote(text, line);
  if (/^[&*!|>]/.test(text)) fail(line, `unsupported YAML feature: ${text}`);
  if (text.startsWith('[') || text.startsWith('{')) return flow(text, line);
  if (text === 'null' || text === '~') return null;
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(text)) return Number(text);
  if (/: |:$/.test(text)) fail(line, `ambiguous plain scalar (quote it): ${text}`);
  return text;
}

/** Splits a flow collection's body at top-level commas. */
function splitFlow(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let n = 0; n < body.length; n++) {
    const c = body[n]!;
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(body.slice(start, n).trim());
      start = n + 1;
    }
  }
  parts.push(body.slice(start).trim());
  return parts.filter((part) => part !== '');
}

function flow(text: string, line?: Line): YamlValue {
  const close = text.startsWith('[') ? ']' : '}';
  if (!text.endsWith(close)) fail(line, `multi-line or unterminated flow collection: ${text}`);
  const parts = splitFlow(text.slice(1, -1));
  if (close === ']') return parts.map((part) => scalar(part, line));
  return Object.fromEntries(
    parts.map((part) => {
      const [key, value] = splitKey(part, line);
      return [key, value === '' ? null : scalar(value, line)];
    }),
  );
}

/** `key: value` → [key, value text]; undefined when the text is not a mapping entry. */
function splitKey(text: string, line?: Line): [string, string] {
  const quoted = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')\s*:(?:\s+|$)/.exec(text);
  if (quoted) return [unquote(quoted[1]!, line), text.slice(quoted[0].length).trim()];
  const match = /^([^\s"'{[\]}#,][^#]*?)\s*:(?:\s+|$)/.exec(text);
  if (!match) return fail(line, `expected "key: value": ${text}`);
  return [match[1]!, text.slice(match[0].length).trim()];
}

const isMappingEntry = (text: string) =>
  /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'{[\]}#,-][^#]*?|-[^\s][^#]*?)\s*:(\s|$)/.test(text);
const isSequenceItem = (text: string) => text === '-' || text.startsWith('- ');

class Parser {
  readonly #lines: Line[];
  #at = 0;

  constructor(lines: Line[]) {
    this.#lines = lines;
  }

  parseDocument(): YamlValue {
    const first = this.#lines[0];
    if (!first) return null;
    const value = this.#block(first.indent);
    if (this.#at < this.#lines.length) fail(this.#lines[this.#at], 'unexpected indentation');
    return value;
  }

  #block(indent: number): YamlValue {
    const line = this.#lines[this.#at]!;
    if (isSequenceItem(line.text)) return this.#sequence(indent);
    if (isMappingEntry(line.text)) return this.#mapping(indent);
    this.#at++;
    return scalar(line.text, line);
  }

  #sequence(indent: number): YamlValue[] {
    const items: YamlValue[] = [];
    for (let line = this.#lines[this.#at]; line?.indent === indent && isSequenceItem(line.text); ) {
      const rest = line.text.slice(1).trim();
      if (rest === '') {
        this.#at++;
        items.push(this.#nested(indent));
      } else if (isMappingEntry(rest)) {
        // `- key: value` opens a mapping whose keys line up with `key`.
        this.#lines[this.#at] = { ...line, indent: indent + line.text.indexOf(rest), text: rest };
        items.push(this.#mapping(indent + line.text.indexOf(rest)));
      } else {
        this.#at++;
        items.push(scalar(rest, line));
      }
      line = this.#lines[this.#at];
    }
    return items;
  }

  #mapping(indent: number): { [key: string]: YamlValue } {
    const entries: { [key: string]: YamlValue } = {};
    for (let line = this.#lines[this.#at]; line?.indent === indent && !isSequenceItem(line.text); ) {
      const [key, value] = splitKey(line.text, line);
      if (Object.hasOwn(entries, key)) fail(line, `duplicate key "${key}"`);
      this.#at++;
      entries[key] = value === '' ? this.#nested(indent, true) : scalar(value, line);
      line = this.#lines[this.#at];
    }
    return entries;
  }

  /** The value under a key or dash with nothing after it: a deeper block, or null. */
  #nested(indent: number, allowSameIndentSequence = false): YamlValue {
    const next = this.#lines[this.#at];
    if (next && next.indent > indent) return this.#block(next.indent);
    if (next && allowSameIndentSequence && next.indent === indent && isSequenceItem(next.text)) {
      return this.#sequence(indent);
    }
    return null;
  }
}

export function parseYaml(source: string): YamlValue {
  return new Parser(toLines(source)).parseDocument();
}
