// The two HTML-unescaping behaviours that openai/CLIP's text cleaning runs: Python's
// `html.unescape` (HTML5 rules, applied twice by CLIP) and ftfy's stricter `unescape_html`
// (semicolon-terminated references only, plus all-caps names such as `&EACUTE;`).
// The named-reference table is the WHATWG one shipped by the `entities` package, which has the
// same 2,231 names as Python's `html.entities.html5`.

import { DecodingMode, decodeHTML, decodeHTMLStrict } from 'entities';

/** Windows-1252 characters for bytes 0x80–0x9F; undefined bytes map to themselves, as in Python's table. */
export const WINDOWS_1252_C1 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

// Python's `html._charref`; the `u` flag makes `{1,32}` count code points as Python does.
const PYTHON_CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

// ftfy's `HTML_ENTITY_RE`: only references closed by a semicolon are candidates.
const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** Python's `html._invalid_codepoints`: references to these decode to nothing. */
function isInvalidCodePoint(codePoint: number): boolean {
  return (
    (codePoint >= 0x1 && codePoint <= 0x8) ||
    codePoint === 0xb ||
    (codePoint >= 0xe && codePoint <= 0x1f) ||
    (codePoint >= 0x7f && codePoint <= 0x9f) ||
    (codePoint >= 0xfdd0 && codePoint <= 0xfdef) ||
    (codePoint & 0xfffe) === 0xfffe
  );
}

/** Python's numeric-reference rule; `digits` has no `&#`, `x` or trailing `;`. */
function decodeNumericReference(digits: string, radix: 10 | 16): string {
  // parseInt turns absurdly long references into huge numbers or Infinity, both above 0x10FFFF.
  const codePoint = Number.parseInt(digits, radix);
  if (codePoint === 0) return '\ufffd';
  if (codePoint === 0x0d) return '\r';
  if (codePoint >= 0x80 && codePoint <= 0x9f) return WINDOWS_1252_C1[codePoint - 0x80] ?? '';
  if ((codePoint >= 0xd800 && codePoint <= 0xdfff) || codePoint > 0x10ffff) return '\ufffd';
  if (isInvalidCodePoint(codePoint)) return '';
  return String.fromCodePoint(codePoint);
}

function replacePythonCharref(whole: string, reference: string): string {
  if (reference.startsWith('#')) {
    const isHex = reference[1] === 'x' || reference[1] === 'X';
    const digits = reference.slice(isHex ? 2 : 1).replace(/;$/, '');
    return decodeNumericReference(digits, isHex ? 16 : 10);
  }
  // Python looks the whole name up, then the longest prefix of at least two characters; only the
  // legacy names without a semicolon can match a prefix. In the WHATWG "data" state, which is
  // what DecodingMode.Legacy implements, the decoder consumes exactly that longest match.
  return decodeHTML(whole, DecodingMode.Legacy);
}

/** Python 3.11 `html.unescape`: HTML5 named and numeric references, semicolon optional. */
export function pythonHtmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(PYTHON_CHARREF_RE, replacePythonCharref);
}

/** `&name;` when `name;` is exactly a WHATWG entity name, else undefined. */
function lookupExactEntity(reference: string): string | undefined {
  const decoded = decodeHTMLStrict(reference);
  return decoded === reference ? undefined : decoded;
}

/**
 * ftfy also accepts an all-caps spelling of an all-lowercase entity (`&EACUTE;` → `É`) when
 * Python's own unescape leaves that spelling alone; the character is uppercased too.
 */
function lookupUppercaseEntity(reference: string): string | undefined {
  const lower = reference.toLowerCase();
  if (reference !== reference.toUpperCase() || lower === reference) return undefined;
  if (pythonHtmlUnescape(reference) !== reference) return undefined;
  return lookupExactEntity(lower)?.toUpperCase();
}

function replaceFtfyEntity(reference: string): string {
  if (!reference.startsWith('&#')) {
    return lookupExactEntity(reference) ?? lookupUppercaseEntity(reference) ?? reference;
  }
  const unescaped = pythonHtmlUnescape(reference);
  // A reference that Python decodes only partly (`&#65a;`) is left untouched.
  return unescaped.includes(';') ? reference : unescaped;
}

/** ftfy 6.3 `fixes.unescape_html`. */
export function ftfyUnescapeHtml(text: string): string {
  return text.replace(FTFY_ENTITY_RE, replaceFtfyEntity);
}
