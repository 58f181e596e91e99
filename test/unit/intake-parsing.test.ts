import { describe, expect, it } from 'vitest';
import { createFieldBag, formFieldValue } from '../../services/api/intake/form-fields.ts';
import { locateJsonSyntaxError } from '../../services/api/intake/json-syntax-error.ts';

// The pieces of intake that parse text: the JSON error locator is checked against V8's own parser,
// which names the position for most mistakes, over hand-picked and randomly mutated documents.

const VALID =
  '{"image": {"base64": "iVBORw0K"}, "labels": ["a \\"cat\\"", "\\u00e9"], "n": -1.5e3, "ok": true, "x": null, "deep": [[{}], []]}';

/** V8's position for the error, when its message names one. */
function v8Position(text: string): number | undefined {
  try {
    JSON.parse(text);
  } catch (error) {
    const match = /at position (\d+)/.exec((error as Error).message);
    return match === null ? undefined : Number(match[1]);
  }
  throw new Error(`expected ${JSON.stringify(text)} to be invalid`);
}

function isValidJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Deterministic mutations: delete, duplicate or replace one character. */
function mutations(text: string, count: number): string[] {
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  const alphabet = '{}[],:"\\ 0-e.tx\n';
  return Array.from({ length: count }, () => {
    const at = next() % text.length;
    const kind = next() % 3;
    const char = alphabet[next() % alphabet.length] ?? ' ';
    if (kind === 0) return text.slice(0, at) + text.slice(at + 1);
    if (kind === 1) return text.slice(0, at) + text[at] + text.slice(at);
    return text.slice(0, at) + char + text.slice(at + 1);
  });
}

describe('locateJsonSyntaxError', () => {
  it('finds nothing wrong in valid JSON', () => {
    for (const text of [VALID, ' 1 ', '"s"', '[]', '{}', 'null', '\n[1,\n2]\n']) {
      expect(locateJsonSyntaxError(text)).toBeUndefined();
    }
  });

  it('agrees with V8 on the position wherever V8 names one', () => {
    let compared = 0;
    for (const text of mutations(VALID, 2000)) {
      const located = locateJsonSyntaxError(text);
      if (isValidJson(text)) {
        expect(located, text).toBeUndefined();
        continue;
      }
      expect(located, text).toBeDefined();
      const position = v8Position(text);
      if (position !== undefined) {
        expect(located?.position, text).toBe(position);
        compared += 1;
      }
    }
    expect(compared).toBeGreaterThan(500);
  });

  it('gives line and column and names the problem', () => {
    expect(locateJsonSyntaxError('{"a": 1,\n  "b": }')).toEqual({
      position: 16,
      line: 2,
      column: 8,
      problem: 'unexpected character "}"',
    });
    expect(locateJsonSyntaxError('{"a": [1, 2')).toMatchObject({
      position: 11,
      problem: 'unexpected end of input',
    });
    expect(locateJsonSyntaxError('{"a": 1} x')).toMatchObject({ position: 9, column: 10 });
  });
});

describe('form fields', () => {
  it('parses JSON objects and arrays and leaves other text alone', () => {
    expect(formFieldValue('{"a":1}')).toEqual({ a: 1 });
    expect(formFieldValue(' ["x"]')).toEqual(['x']);
    expect(formFieldValue('[not json')).toBe('[not json');
    expect(formFieldValue('42')).toBe('42');
  });

  it('keeps a field named __proto__ as an ordinary own field', () => {
    const bag = createFieldBag();
    bag.add('__proto__', 'x');
    bag.add('a', 1);
    bag.add('a', 2);
    const record = bag.toRecord();
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
    expect(Object.entries(record)).toEqual([
      ['__proto__', 'x'],
      ['a', [1, 2]],
    ]);
  });
});
