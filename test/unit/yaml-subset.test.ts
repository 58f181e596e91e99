import { describe, expect, it } from 'vitest';
import { parseYaml } from '../helpers/yaml-subset.ts';

// The YAML reader the deployment tests rely on: wrong answers here would hide wrong deployment files.

describe('parseYaml (the deployment files subset)', () => {
  it('reads nested mappings, sequences of mappings, flow collections and typed scalars', () => {
    const text = [
      'name: clipmod # trailing comment',
      'services:',
      '  api:',
      '    ports:',
      '      - "8080:8080"',
      '    depends_on: [redis, "grafana"]',
      '    environment: {}',
      'items:',
      '- key: nvidia.com/gpu',
      '  operator: Exists',
      '- plain',
      'numbers: [1, 2.5, true, null]',
      "quoted: 'it''s # not a comment'",
    ].join('\n');
    expect(parseYaml(text)).toEqual({
      name: 'clipmod',
      services: { api: { ports: ['8080:8080'], depends_on: ['redis', 'grafana'], environment: {} } },
      items: [{ key: 'nvidia.com/gpu', operator: 'Exists' }, 'plain'],
      numbers: [1, 2.5, true, null],
      quoted: "it's # not a comment",
    });
  });

  it('keeps URLs and interpolations with colons as plain strings', () => {
    const interpolation = '$' + '{KEY:?set KEY}'; // compose syntax, not a template string
    expect(parseYaml(`url: redis://redis:6379\nkey: ${interpolation}\nempty:`)).toEqual({
      url: 'redis://redis:6379',
      key: interpolation,
      empty: null,
    });
  });

  it.each([
    ['a: &anchor 1', /unsupported YAML feature/],
    ['a: |\n  text', /unsupported YAML feature/],
    ['a: [1,\n  2]', /multi-line or unterminated/],
    ['a: 1\na: 2', /duplicate key "a"/],
    ['a: b: c', /ambiguous plain scalar/],
  ])('refuses %j instead of guessing', (text, message) => {
    expect(() => parseYaml(text)).toThrow(message);
  });
});
