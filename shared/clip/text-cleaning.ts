// Text cleaning of openai/CLIP's `simple_tokenizer` (commit d05afc4), which thresholds tuned on
// OpenAI CLIP depend on: `ftfy.fix_text` (6.3.1 defaults), `html.unescape` twice, strip,
// `\s+` → " ", strip, `str.lower()`. Every ftfy step is ported except mojibake repair
// (`fix_encoding`: `cafÃ©` → `café`), whose statistical detector is not worth porting for prompts.

import { ftfyUnescapeHtml, pythonHtmlUnescape, WINDOWS_1252_C1 } from './html-unescape.ts';

/** ftfy `LIGATURES`: Latin ligatures and legacy digraphs, not `æ`/`œ`, which are real letters. */
const LIGATURES: Readonly<Record<string, string>> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

// ftfy `WIDTH_MAP`: U+3000 and every halfwidth/fullwidth form whose NFKC differs.
const WIDTH_FORM_RE = /[\u3000\uff01-\uffef]/g;
const C1_CONTROL_RE = /[\x80-\x9f]/g;
const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/g;
const LINE_BREAK_RE = /\r\n|[\r\u2028\u2029\x85]/g;
const LONE_SURROGATE_RE = /\p{Cs}/gu;
// Python's `\d` in a str pattern is any Unicode decimal digit.
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what a terminal escape starts with.
const TERMINAL_ESCAPE_RE = /\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu;
// ftfy `CONTROL_CHARS`; tab, LF, FF, CR and the C1 range survive (C1 is remapped above).
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
const CONTROL_CHAR_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

/**
 * Python's `str.isspace()` characters, as a RegExp character-class body. Unlike JS `\s` it has
 * U+0085 and lacks U+FEFF (which `&#65279` brings back after ftfy). \x1c-\x1f are in
 * `str.isspace()` but perhaps not in the `regex` module's `\s`; ftfy deletes them and
 * `html.unescape` never produces them, so the difference cannot show.
 */
export const PYTHON_WHITESPACE_CLASS =
  '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN_RE = new RegExp(`[${PYTHON_WHITESPACE_CLASS}]+`, 'g');
const EDGE_WHITESPACE_RE = new RegExp(`^[${PYTHON_WHITESPACE_CLASS}]+|[${PYTHON_WHITESPACE_CLASS}]+$`, 'g');

function fixCharacterWidth(text: string): string {
  return text.replace(WIDTH_FORM_RE, (char) => (char === '\u3000' ? ' ' : char.normalize('NFKC')));
}

/** One pass of ftfy's fixers, in `fix_and_explain` order. */
function applyFtfyFixers(text: string, shouldUnescapeHtml: boolean): string {
  let fixed = shouldUnescapeHtml ? ftfyUnescapeHtml(text) : text;
  fixed = fixed.replace(C1_CONTROL_RE, (char) => WINDOWS_1252_C1[char.charCodeAt(0) - 0x80] ?? char);
  fixed = fixed.replace(LIGATURE_RE, (char) => LIGATURES[char] ?? char);
  fixed = fixCharacterWidth(fixed);
  fixed = fixed.replace(DOUBLE_QUOTE_RE, '"').replace(SINGLE_QUOTE_RE, "'");
  fixed = fixed.replace(LINE_BREAK_RE, '\n');
  fixed = fixed.replace(LONE_SURROGATE_RE, '\ufffd');
  fixed = fixed.replace(TERMINAL_ESCAPE_RE, '');
  fixed = fixed.replace(CONTROL_CHAR_RE, '');
  return fixed.normalize('NFC');
}

/** ftfy repeats its fixers on a segment until the text stops changing. */
function fixSegment(segment: string, shouldUnescapeHtml: boolean): string {
  let text = segment;
  for (;;) {
    const fixed = applyFtfyFixers(text, shouldUnescapeHtml);
    if (fixed === text) return fixed;
    text = fixed;
  }
}

/**
 * `ftfy.fix_text` with default settings, minus mojibake repair. ftfy works line by line and stops
 * unescaping HTML for good at the first line containing `<`, since the text may then be markup.
 * (Its 1,000,000-character segment cap is not reproduced; prompts are far shorter.)
 */
export function fixTextLikeFtfy(text: string): string {
  let shouldUnescapeHtml = true;
  let fixed = '';
  for (const segment of text.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    if (segment.includes('<')) shouldUnescapeHtml = false;
    fixed += fixSegment(segment, shouldUnescapeHtml);
  }
  return fixed;
}

/** The exact string openai/CLIP's `SimpleTokenizer.encode` runs its word regex on. */
export function cleanClipText(text: string): string {
  const unescaped = pythonHtmlUnescape(pythonHtmlUnescape(fixTextLikeFtfy(text)));
  // Python strips, collapses, strips again; collapsing first then stripping gives the same string.
  return unescaped.replace(WHITESPACE_RUN_RE, ' ').replace(EDGE_WHITESPACE_RE, '').toLowerCase();
}
