// Where a JSON text goes wrong. V8's JSON.parse messages name a position for some mistakes only
// (`Unexpected token '}', "…" is not valid JSON` names none, and quotes the client's text back), so
// a failed parse is rescanned here to tell the client the line and column of the first error.

export type JsonSyntaxError = { position: number; line: number; column: number; problem: string };

const LITERALS: Record<string, string> = { t: 'true', f: 'false', n: 'null' };

type Expect = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'separator';

function skipWhitespace(text: string, from: number): number {
  let i = from;
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r'))
    i += 1;
  return i;
}

/** End of the escape whose backslash is at `from`, or minus one minus the offending offset. */
function scanEscape(text: string, from: number): number {
  const kind = text[from + 1];
  if (kind !== undefined && '"\\/bfnrt'.includes(kind)) return from + 2;
  if (kind !== 'u') return -2 - from;
  for (let i = from + 2; i < from + 6; i += 1) if (!/[0-9a-fA-F]/.test(text[i] ?? '')) return -1 - i;
  return from + 6;
}

/** End of the string starting at `from` (a `"`), or minus one minus the offending offset. */
function scanString(text: string, from: number): number {
  let i = from + 1;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return -1 - i;
    i = code === 0x5c ? scanEscape(text, i) : i + 1;
    if (i < 0) return i;
  }
  return -1 - i;
}

function skipDigits(text: string, from: number): number {
  let i = from;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i += 1;
  return i;
}

/** End of the number at `from`; a part that must start with a digit and does not is the error. */
function scanNumber(text: string, from: number): number {
  let i = text[from] === '-' ? from + 1 : from;
  if (text[i] === '0') i += 1;
  else if (skipDigits(text, i) > i) i = skipDigits(text, i);
  else return -1 - i;
  if (text[i] === '.') {
    if (skipDigits(text, i + 1) === i + 1) return -2 - i;
    i = skipDigits(text, i + 1);
  }
  if (text[i] === 'e' || text[i] === 'E') {
    const digitsFrom = text[i + 1] === '+' || text[i + 1] === '-' ? i + 2 : i + 1;
    if (skipDigits(text, digitsFrom) === digitsFrom) return -1 - digitsFrom;
    i = skipDigits(text, digitsFrom);
  }
  return i;
}

/** End of the number, `true`, `false` or `null` at `from`, or minus one minus the offending offset. */
function scanScalar(text: string, from: number): number {
  const char = text[from] ?? '';
  const literal = LITERALS[char];
  if (literal !== undefined) {
    for (let k = 1; k < literal.length; k += 1) if (text[from + k] !== literal[k]) return -1 - from - k;
    return from + literal.length;
  }
  return char === '-' || (char >= '0' && char <= '9') ? scanNumber(text, from) : -1 - from;
}

/** Offset of the first syntax error, or -1 when the text is valid JSON. */
function firstErrorOffset(text: string): number {
  const open: string[] = [];
  let expect: Expect = 'value';
  let i = skipWhitespace(text, 0);
  while (!(expect === 'separator' && open.length === 0)) {
    if (i >= text.length) return i;
    const char = text[i];
    const closer = open.at(-1) === '{' ? '}' : ']';
    let end: number;
    if (
      (expect === 'value-or-close' || expect === 'key-or-close' || expect === 'separator') &&
      char === closer
    ) {
      open.pop();
      [end, expect] = [i + 1, 'separator'];
    } else if (expect === 'separator') {
      if (char !== ',') return i;
      [end, expect] = [i + 1, closer === '}' ? 'key' : 'value'];
    } else if (expect === 'colon') {
      if (char !== ':') return i;
      [end, expect] = [i + 1, 'value'];
    } else if (expect === 'key' || expect === 'key-or-close') {
      end = char === '"' ? scanString(text, i) : -1 - i;
      expect = 'colon';
    } else if (char === '{' || char === '[') {
      open.push(char);
      [end, expect] = [i + 1, char === '{' ? 'key-or-close' : 'value-or-close'];
    } else {
      end = char === '"' ? scanString(text, i) : scanScalar(text, i);
      expect = 'separator';
    }
    if (end < 0) return -1 - end;
    i = skipWhitespace(text, end);
  }
  return i < text.length ? i : -1;
}

/** Locates the first syntax error of a text JSON.parse refused; undefined if the scan finds none. */
export function locateJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const position = firstErrorOffset(text);
  if (position < 0) return undefined;
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  const problem =
    position >= text.length
      ? 'unexpected end of input'
      : `unexpected character ${JSON.stringify(text[position])}`;
  return { position, line, column, problem };
}
