import { describe, expect, it } from 'vitest';
import { ClipmodError } from '../../shared/errors/index.ts';
import { formatFieldPath, type PolicyFieldError, validatePolicy } from '../../shared/policy/index.ts';

const minimal = {
  labels: [{ id: 'red', prompts: ['a red image'], threshold: 0.5, action: 'block' }],
  scoring: 'softmax',
  baseline: ['a green image', 'a blue image'],
};

function label(id: string, overrides: Record<string, unknown> = {}) {
  return { id, prompts: [`a photo of ${id}`], threshold: 0.5, action: 'review', ...overrides };
}

/** The field errors validatePolicy reports, or fails the test if it accepts the document. */
function errorsOf(document: unknown, countTokens?: (text: string) => number): PolicyFieldError[] {
  try {
    validatePolicy(document, countTokens === undefined ? {} : { countTokens });
  } catch (error) {
    expect(error).toBeInstanceOf(ClipmodError);
    expect((error as ClipmodError).code).toBe('bad_request');
    return (error as ClipmodError).details.errors as PolicyFieldError[];
  }
  throw new Error('expected the policy to be rejected');
}

const pathsOf = (document: unknown) => errorsOf(document).map((error) => error.path);

/** A stand-in tokenizer: one token per word plus the start and end tokens. */
const countWords = (text: string) => text.split(/\s+/).filter(Boolean).length + 2;

describe('validatePolicy', () => {
  it("accepts DESIGN.md's minimal policy unchanged", () => {
    expect(validatePolicy(minimal)).toEqual({ ...minimal, defaultAction: 'allow' });
  });

  it('fills scoring, baseline and defaultAction with their defaults', () => {
    const document = validatePolicy({ labels: [label('a'), label('b')] });
    expect(document.scoring).toBe('softmax');
    expect(document.baseline).toEqual([]);
    expect(document.defaultAction).toBe('allow');
    expect(document.templates).toBeUndefined();
  });

  it('keeps descriptions, templates and independent scoring', () => {
    const document = validatePolicy({
      labels: [label('weapons', { description: 'firearms and knives' })],
      scoring: 'independent',
      templates: ['a photo of {}.', 'a drawing of {}.'],
    });
    expect(document.labels[0]?.description).toBe('firearms and knives');
    expect(document.templates).toEqual(['a photo of {}.', 'a drawing of {}.']);
    expect(document.scoring).toBe('independent');
  });

  it('points a duplicate label id at the later occurrence', () => {
    const errors = errorsOf({ labels: [label('a'), label('b'), label('a')] });
    expect(errors).toEqual([{ path: 'labels[2].id', message: expect.stringContaining('labels[0].id') }]);
  });

  it('rejects label ids outside ^[a-z0-9][a-z0-9_-]{0,63}$', () => {
    for (const id of ['Red', '-red', 'red label', '', 'x'.repeat(65), 'a:b']) {
      expect(pathsOf({ labels: [label('ok'), label(id)] })).toEqual(['labels[1].id']);
    }
    expect(validatePolicy({ labels: [label('a'), label(`9${'_-x'.repeat(21)}`)] }).labels).toHaveLength(2);
  });

  it('needs at least one label and one prompt per label', () => {
    expect(pathsOf({ labels: [] })).toEqual(['labels']);
    expect(pathsOf({ labels: [label('a'), label('b', { prompts: [] })] })).toEqual(['labels[1].prompts']);
    expect(pathsOf({})).toEqual(['labels']);
  });

  it('rejects blank prompts and prompts over 300 characters', () => {
    const prompts = ['fine', '   ', 'x'.repeat(301), 'y'.repeat(300)];
    expect(pathsOf({ labels: [label('a', { prompts })], scoring: 'independent' })).toEqual([
      'labels[0].prompts[1]',
      'labels[0].prompts[2]',
    ]);
    expect(pathsOf({ ...minimal, baseline: [''] })).toEqual(['baseline[0]']);
  });

  it('keeps thresholds within [0, 1]', () => {
    expect(pathsOf({ labels: [label('a', { threshold: 1.01 }), label('b', { threshold: -0.1 })] })).toEqual([
      'labels[0].threshold',
      'labels[1].threshold',
    ]);
    expect(pathsOf({ labels: [label('a', { threshold: '0.5' }), label('b')] })).toEqual([
      'labels[0].threshold',
    ]);
    const edges = validatePolicy({ labels: [label('a', { threshold: 0 }), label('b', { threshold: 1 })] });
    expect(edges.labels.map((entry) => entry.threshold)).toEqual([0, 1]);
  });

  it('accepts only block, review and allow as actions', () => {
    expect(pathsOf({ labels: [label('a', { action: 'delete' }), label('b')] })).toEqual(['labels[0].action']);
  });

  it('rejects an unknown scoring mode and any default action but allow', () => {
    expect(pathsOf({ ...minimal, scoring: 'sigmoid' })).toEqual(['scoring']);
    expect(pathsOf({ ...minimal, defaultAction: 'block' })).toEqual(['defaultAction']);
  });

  it('requires {} in every template', () => {
    expect(pathsOf({ ...minimal, templates: ['a photo of {}', 'a photo'] })).toEqual(['templates[1]']);
    expect(pathsOf({ ...minimal, templates: [] })).toEqual(['templates']);
  });

  it('rejects misspelt fields instead of ignoring them', () => {
    expect(pathsOf({ ...minimal, treshold: 0.3 })).toEqual(['(root)']);
    const errors = errorsOf({ labels: [{ ...label('a'), treshold: 0.2 }, label('b')] });
    expect(errors[0]).toMatchObject({ path: 'labels[0]', message: expect.stringContaining('treshold') });
  });

  it('refuses softmax over a single prompt, which would score 1 for every image', () => {
    const single = { labels: [label('a')] };
    expect(errorsOf(single)).toEqual([{ path: 'baseline', message: expect.stringContaining('independent') }]);
    expect(validatePolicy({ ...single, scoring: 'independent' }).labels).toHaveLength(1);
    expect(validatePolicy({ ...single, baseline: ['anything else'] }).baseline).toEqual(['anything else']);
  });

  it('reports every bad field at once and summarises them in the message', () => {
    let message = '';
    try {
      validatePolicy({ labels: [label('A', { threshold: 2, action: 'nope' })], scoring: 'x' });
    } catch (error) {
      message = (error as Error).message;
      expect((error as ClipmodError).details.errors).toHaveLength(4);
    }
    expect(message).toMatch(
      /^invalid policy: labels\[0\]\.id: .*; labels\[0\]\.threshold: .*\(and 1 more\)$/,
    );
  });

  it('rejects a body that is not an object', () => {
    expect(pathsOf(['labels'])).toEqual(['(root)']);
    expect(pathsOf(null)).toEqual(['(root)']);
  });
});

describe('validatePolicy with a tokenizer', () => {
  const longPrompt = Array.from({ length: 80 }, () => 'w').join(' ');

  it('names each prompt the model would truncate, with its token count', () => {
    const baseline = [longPrompt.replaceAll('w', 'v')];
    const document = { labels: [label('a', { prompts: ['short', longPrompt] })], baseline };
    expect(errorsOf(document, countWords)).toEqual([
      { path: 'labels[0].prompts[1]', message: '82 tokens, the model reads at most 77' },
      { path: 'baseline[0]', message: '82 tokens, the model reads at most 77' },
    ]);
  });

  it('accepts a prompt of exactly 77 tokens', () => {
    const prompt = Array.from({ length: 75 }, () => 'w').join(' ');
    expect(
      validatePolicy({ ...minimal, labels: [label('a', { prompts: [prompt] })] }, { countTokens: countWords })
        .labels,
    ).toHaveLength(1);
  });

  it('counts prompts as the templates expand them and names the template that overflows', () => {
    const prompt = Array.from({ length: 70 }, () => 'w').join(' ');
    const document = {
      ...minimal,
      labels: [label('a', { prompts: [prompt] })],
      templates: ['{}', 'a very long winded photograph that shows {}'],
    };
    expect(errorsOf(document, countWords)).toEqual([
      { path: 'labels[0].prompts[0]', message: '79 tokens, the model reads at most 77 (with templates[1])' },
    ]);
  });

  it('skips token counting until the shape is valid', () => {
    let calls = 0;
    const counting = (text: string) => {
      calls += 1;
      return countWords(text);
    };
    expect(
      errorsOf({ labels: [label('A', { prompts: [longPrompt] })], scoring: 'independent' }, counting).map(
        (error) => error.path,
      ),
    ).toEqual(['labels[0].id']);
    expect(calls).toBe(0);
  });
});

describe('formatFieldPath', () => {
  it('writes array indices in brackets and keys with dots', () => {
    expect(formatFieldPath(['labels', 2, 'prompts', 0])).toBe('labels[2].prompts[0]');
    expect(formatFieldPath([])).toBe('(root)');
    expect(formatFieldPath([0, 'id'])).toBe('[0].id');
  });
});

describe('validatePolicy: excludes, metadata and duplicate prompts', () => {
  it('keeps exclude prompts, a description and calibrated: false', () => {
    const document = validatePolicy({
      ...minimal,
      labels: [label('weapons', { prompts: ['a gun'], exclude: ['a toy gun', 'a water pistol'] })],
      description: 'weapons only',
      calibrated: false,
    });
    expect(document.labels[0]?.exclude).toEqual(['a toy gun', 'a water pistol']);
    expect(document.description).toBe('weapons only');
    expect(document.calibrated).toBe(false);
  });

  it('rejects an empty exclude list, blank excludes and a non-boolean calibrated', () => {
    expect(pathsOf({ ...minimal, labels: [label('a', { exclude: [] })] })).toEqual(['labels[0].exclude']);
    expect(pathsOf({ ...minimal, labels: [label('a', { exclude: [' '] })] })).toEqual([
      'labels[0].exclude[0]',
    ]);
    expect(pathsOf({ ...minimal, calibrated: 'no' })).toEqual(['calibrated']);
  });

  it('rejects an exclude that is also a prompt of its label, and repeated excludes', () => {
    const weapons = label('weapons', { prompts: ['a gun'], exclude: ['a toy gun', 'a gun', 'a toy gun'] });
    expect(errorsOf({ ...minimal, labels: [weapons] })).toEqual([
      { path: 'labels[0].exclude[1]', message: expect.stringContaining('labels[0].prompts[0]') },
      { path: 'labels[0].exclude[2]', message: 'duplicates labels[0].exclude[0]' },
    ]);
  });

  it('accepts an exclude that is another label’s prompt (a toy gun is a toy, not a weapon)', () => {
    const labels = [
      label('weapons', { prompts: ['a gun'], exclude: ['a toy gun'] }),
      label('toys', { prompts: ['a toy gun'] }),
    ];
    expect(validatePolicy({ ...minimal, labels }).labels).toHaveLength(2);
  });

  it('rejects a prompt repeated in its label or in the baseline, and across labels under softmax', () => {
    const repeated = label('a', { prompts: ['x', 'y', 'x'] });
    expect(errorsOf({ ...minimal, labels: [repeated] })).toEqual([
      { path: 'labels[0].prompts[2]', message: 'duplicates labels[0].prompts[0]' },
    ]);
    expect(errorsOf({ ...minimal, baseline: ['a green image', 'a red image'] })).toEqual([
      { path: 'baseline[1]', message: 'duplicates labels[0].prompts[0]' },
    ]);
    const shared = [label('a', { prompts: ['x'] }), label('b', { prompts: ['x'] })];
    expect(pathsOf({ labels: shared, baseline: ['z'] })).toEqual(['labels[1].prompts[0]']);
    expect(validatePolicy({ labels: shared, scoring: 'independent' }).labels).toHaveLength(2);
  });

  it('counts exclude prompts against the 77-token limit too', () => {
    const longPrompt = Array.from({ length: 80 }, () => 'w').join(' ');
    const document = { ...minimal, labels: [label('a', { exclude: [longPrompt] })] };
    expect(errorsOf(document, countWords)).toEqual([
      { path: 'labels[0].exclude[0]', message: '82 tokens, the model reads at most 77' },
    ]);
  });
});
