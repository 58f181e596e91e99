import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ftfyUnescapeHtml, pythonHtmlUnescape } from '../../shared/clip/html-unescape.ts';
import { cleanClipText, fixTextLikeFtfy } from '../../shared/clip/text-cleaning.ts';

type GoldenCase = { text: string; normalized: string };

const golden: GoldenCase[] = JSON.parse(
  readFileSync(new URL('../fixtures/clip-reference/tokenizer-golden.json', import.meta.url), 'utf8'),
);

/** Only ftfy's mojibake repair is not ported; these are the goldens that need it. */
const MOJIBAKE_CASES = ['cafÃ©', 'donâ€™t'];

describe('cleanClipText against the openai/CLIP goldens', () => {
  it('reproduces the normalized string of every golden case except the mojibake ones', () => {
    const misses = golden.filter((c) => cleanClipText(c.text) !== c.normalized).map((c) => c.text);
    expect(misses).toEqual(MOJIBAKE_CASES);
  });
});

describe('pythonHtmlUnescape (Python html.unescape)', () => {
  it.each([
    ['&copy', '©'],
    ['&ampx', '&x'],
    ['&notit;', '¬it;'],
    ['&unknown;', '&unknown;'],
    ['&EACUTE;', '&EACUTE;'],
    ['&amp;amp;amp;', '&amp;amp;'],
  ])('decodes named reference %j as Python does', (input, expected) => {
    expect(pythonHtmlUnescape(input)).toBe(expected);
  });

  it.each([
    ['&#x80;', '€'],
    ['&#x81;', '\x81'],
    ['&#0;', '\ufffd'],
    ['&#128512;', '😀'],
    ['&#xd800;', '\ufffd'],
    ['&#x110000;', '\ufffd'],
    ['&#99999999999999999999;', '\ufffd'],
    ['a&#1;b', 'ab'],
    ['a&#xfdd0;b', 'ab'],
    ['a&#13;b', 'a\rb'],
    ['&#65a;', 'Aa;'],
  ])('decodes numeric reference %j as Python does', (input, expected) => {
    expect(pythonHtmlUnescape(input)).toBe(expected);
  });
});

describe('ftfyUnescapeHtml (ftfy unescape_html)', () => {
  it('decodes only semicolon-terminated references', () => {
    expect(ftfyUnescapeHtml('&amp; &amp &copy &lt;')).toBe('& &amp &copy <');
  });

  it('decodes all-caps names that Python leaves alone, uppercasing the character', () => {
    expect(ftfyUnescapeHtml('P&EACUTE;REZ BUNDESSTRA&SZLIG;E')).toBe('PÉREZ BUNDESSTRASSE');
    expect(ftfyUnescapeHtml('&nTILDE;')).toBe('&nTILDE;');
  });

  it('leaves numeric references that Python decodes only partly', () => {
    expect(ftfyUnescapeHtml('&#65a; &#65;')).toBe('&#65a; A');
  });
});

describe('fixTextLikeFtfy', () => {
  it('unescapes nested entities until stable while the text has no "<"', () => {
    expect(fixTextLikeFtfy('&amp;amp;amp;')).toBe('&');
  });

  it('stops unescaping from the first line containing "<" onwards', () => {
    expect(fixTextLikeFtfy('x &amp;amp;\n<b> &amp;amp;\n&amp;')).toBe('x &\n<b> &amp;amp;\n&amp;');
  });

  it('uncurls single and double quotes, including U+02BC', () => {
    expect(fixTextLikeFtfy('‘a’ “b” c‛d‟ ʼe')).toBe(`'a' "b" c'd" 'e`);
  });

  it('expands Latin ligatures and digraphs', () => {
    expect(fixTextLikeFtfy('ﬁsh ﬂuﬃeﬆ Ǆ ĳ')).toBe('fish fluffiest DŽ ij');
  });

  it('maps fullwidth and halfwidth forms and the ideographic space to standard width', () => {
    expect(fixTextLikeFtfy('ＡＢＣ\u3000ｳｫ')).toBe('ABC ウォ');
  });

  it('removes control characters, BOM and terminal escapes but keeps tab, LF and FF', () => {
    expect(fixTextLikeFtfy('a\x00b\x0bc\x7f\ufeffd\u206ae\ufffcf')).toBe('abcdef');
    expect(fixTextLikeFtfy('\x1b[31;1mred\x1b[0m')).toBe('red');
    expect(fixTextLikeFtfy('a\tb\x0cc')).toBe('a\tb\x0cc');
  });

  it('reads C1 control characters as Windows-1252, before line breaks are unified', () => {
    expect(fixTextLikeFtfy('\x80 \x85 \x81')).toBe('€ … \x81');
  });

  it('unifies line breaks to LF', () => {
    expect(fixTextLikeFtfy('a\r\nb\rc\u2028d\u2029e')).toBe('a\nb\nc\nd\ne');
  });

  it('replaces lone surrogates and composes to NFC', () => {
    expect(fixTextLikeFtfy('a\ud800b cafe\u0301')).toBe('a\ufffdb café');
  });
});

describe('cleanClipText', () => {
  it('unescapes HTML twice after ftfy, so one more level survives when the text has "<"', () => {
    expect(cleanClipText('&amp;amp;')).toBe('&');
    expect(cleanClipText('< &amp;amp;amp;')).toBe('< &amp;');
  });

  it('decodes all-caps entities through ftfy, then lowercases them', () => {
    expect(cleanClipText('P&EACUTE;REZ')).toBe('pérez');
  });

  it('composes marks that ftfy decoded but not those that only html.unescape decoded', () => {
    expect(cleanClipText('e&#769;')).toBe('é');
    expect(cleanClipText('e&#769')).toBe('e\u0301');
  });

  it('collapses and trims Python whitespace, which excludes U+FEFF', () => {
    expect(cleanClipText('\u00a0a \u2003\n b\u3000')).toBe('a b');
    expect(cleanClipText('a&#13;b')).toBe('a b');
    expect(cleanClipText('a&#65279b')).toBe('a\ufeffb');
    expect(cleanClipText('a&#65279;b')).toBe('ab');
  });

  it('lowercases with Python str.lower semantics', () => {
    expect(cleanClipText('İstanbul')).toBe('i\u0307stanbul');
    expect(cleanClipText('ΣΑΣ Σ')).toBe('σας σ');
    expect(cleanClipText('Ⅻ STRASSE')).toBe('ⅻ strasse');
  });

  it('turns empty and whitespace-only input into the empty string', () => {
    expect(cleanClipText('')).toBe('');
    expect(cleanClipText(' \t\n\x00 ')).toBe('');
  });
});
