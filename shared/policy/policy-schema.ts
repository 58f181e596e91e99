import { z } from 'zod';
import { ClipmodError } from '../errors/index.ts';

/** Policy ids and label ids: short, URL- and Redis-key-safe, so neither needs escaping anywhere. */
export const policyIdPattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** CLIP's text tower reads 77 positions, start and end tokens included; the rest is cut off silently. */
export const maxPromptTokens = 77;

export const maxPromptChars = 300;

export const policyActions = ['allow', 'review', 'block'] as const;

export type PolicyAction = (typeof policyActions)[number];

const promptText = z
  .string()
  .max(maxPromptChars, `must be at most ${maxPromptChars} characters`)
  .refine((text) => text.trim().length > 0, 'must not be empty');

const identifier = z.string().regex(policyIdPattern, 'must match ^[a-z0-9][a-z0-9_-]{0,63}$');

const labelSchema = z.strictObject({
  id: identifier,
  prompts: z.array(promptText).min(1, 'needs at least one prompt'),
  /** Look-alikes that must not count ("a toy gun" for weapons): one matching better suppresses the label. */
  exclude: z.array(promptText).min(1, 'needs at least one prompt when present').optional(),
  threshold: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1'),
  action: z.enum(policyActions),
  description: z.string().max(1_000, 'must be at most 1000 characters').optional(),
});

// Strict objects: a misspelt field ("treshold") must fail loudly, not silently fall back to a default.
export const policyDocumentSchema = z
  .strictObject({
    labels: z.array(labelSchema).min(1, 'needs at least one label'),
    scoring: z.enum(['softmax', 'independent']).default('softmax'),
    baseline: z.array(promptText).default([]),
    templates: z
      .array(promptText.refine((text) => text.includes('{}'), 'must contain {} where the prompt goes'))
      .min(1, 'needs at least one template when present')
      .optional(),
    // Only "allow" for now: any other default would report an action without a flagged label.
    defaultAction: z.literal('allow').default('allow'),
    description: z.string().max(4_000, 'must be at most 4000 characters').optional(),
    /** False until the thresholds were tuned on labelled data with the production model. */
    calibrated: z.boolean().optional(),
  })
  .superRefine((document, context) => {
    const firstIndexById = new Map<string, number>();
    document.labels.forEach((label, index) => {
      const first = firstIndexById.get(label.id);
      if (first === undefined) {
        firstIndexById.set(label.id, index);
        return;
      }
      const message = `duplicates labels[${first}].id "${label.id}"`;
      context.addIssue({ code: 'custom', path: ['labels', index, 'id'], message });
    });
  });

/** A validated policy with defaults filled in; what the store keeps and workers score against. */
export type PolicyDocument = z.output<typeof policyDocumentSchema>;

export type PolicyLabel = PolicyDocument['labels'][number];

export type PolicyFieldError = { path: string; message: string };

export type ValidatePolicyOptions = {
  /** Token count of a text as the model's tokenizer encodes it, start and end tokens included. */
  countTokens?: (text: string) => number;
};

/**
 * Parses a policy document or throws `bad_request` with `details.errors` naming every bad field
 * (`labels[2].id`). Cross-field rules and token lengths (only with an injected tokenizer) are checked
 * once the shape is valid, so a caller sees shape errors first.
 */
export function validatePolicy(input: unknown, options: ValidatePolicyOptions = {}): PolicyDocument {
  const result = policyDocumentSchema.safeParse(input);
  const errors = result.success
    ? [
        ...scoringErrors(result.data),
        ...duplicatePromptErrors(result.data),
        ...tokenLengthErrors(result.data, options.countTokens),
      ]
    : result.error.issues.map((issue) => ({ path: formatFieldPath(issue.path), message: issue.message }));
  if (result.success && errors.length === 0) return result.data;
  const summary = errors
    .slice(0, 3)
    .map((error) => `${error.path}: ${error.message}`)
    .join('; ');
  const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : '';
  throw new ClipmodError('bad_request', `invalid policy: ${summary}${more}`, { details: { errors } });
}

/** `['labels', 2, 'id']` → `labels[2].id`; the root is `(root)`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text === '' ? String(part) : `.${String(part)}`;
  }
  return text === '' ? '(root)' : text;
}

function scoringErrors(document: PolicyDocument): PolicyFieldError[] {
  const promptCount = document.labels.reduce((sum, label) => sum + label.prompts.length, 0);
  if (document.scoring !== 'softmax' || promptCount + document.baseline.length > 1) return [];
  // A softmax over a single prompt is 1 for every image, so the label would always trigger.
  const message =
    'softmax over a single prompt always scores 1: add baseline prompts or use scoring "independent"';
  return [{ path: 'baseline', message }];
}

/**
 * A text that is two classes at once is a mistake: a baseline prompt that equals a label prompt halves
 * (independent: caps at 0.5) the label's score, a label's exclude that equals its own prompt can never
 * match better, and under softmax two labels sharing a prompt split one probability between them.
 */
function duplicatePromptErrors(document: PolicyDocument): PolicyFieldError[] {
  const errors: PolicyFieldError[] = [];
  const seen = new Map<string, { path: string; labelIndex: number | undefined }>();
  const visit = (text: string, path: string, labelIndex: number | undefined) => {
    const first = seen.get(text);
    if (first === undefined) {
      seen.set(text, { path, labelIndex });
      return;
    }
    const isSameLabel = labelIndex !== undefined && first.labelIndex === labelIndex;
    const isBaseline = labelIndex === undefined || first.labelIndex === undefined;
    if (isSameLabel || isBaseline || document.scoring === 'softmax')
      errors.push({ path, message: `duplicates ${first.path}` });
  };
  document.labels.forEach((label, i) => {
    label.prompts.forEach((prompt, j) => visit(prompt, `labels[${i}].prompts[${j}]`, i));
  });
  document.baseline.forEach((prompt, j) => visit(prompt, `baseline[${j}]`, undefined));
  document.labels.forEach((label, i) => errors.push(...excludeErrors(label, i)));
  return errors;
}

function excludeErrors(label: PolicyLabel, labelIndex: number): PolicyFieldError[] {
  const errors: PolicyFieldError[] = [];
  const firstIndex = new Map<string, number>();
  label.exclude?.forEach((prompt, j) => {
    const path = `labels[${labelIndex}].exclude[${j}]`;
    const promptIndex = label.prompts.indexOf(prompt);
    const earlier = firstIndex.get(prompt);
    if (promptIndex >= 0)
      errors.push({
        path,
        message: `is also labels[${labelIndex}].prompts[${promptIndex}]: it can never match better`,
      });
    else if (earlier !== undefined)
      errors.push({ path, message: `duplicates labels[${labelIndex}].exclude[${earlier}]` });
    else firstIndex.set(prompt, j);
  });
  return errors;
}

function tokenLengthErrors(
  document: PolicyDocument,
  countTokens: ((text: string) => number) | undefined,
): PolicyFieldError[] {
  if (countTokens === undefined) return [];
  const templates = document.templates ?? [];
  const errors: PolicyFieldError[] = [];
  const check = (path: string, prompt: string) => {
    const problem = longestExpansion(prompt, templates, countTokens);
    if (problem.tokens <= maxPromptTokens) return;
    const via = problem.templateIndex === undefined ? '' : ` (with templates[${problem.templateIndex}])`;
    errors.push({
      path,
      message: `${problem.tokens} tokens, the model reads at most ${maxPromptTokens}${via}`,
    });
  };
  document.labels.forEach((label, i) => {
    label.prompts.forEach((prompt, j) => check(`labels[${i}].prompts[${j}]`, prompt));
    label.exclude?.forEach((prompt, j) => check(`labels[${i}].exclude[${j}]`, prompt));
  });
  document.baseline.forEach((prompt, j) => check(`baseline[${j}]`, prompt));
  return errors;
}

/** Templates wrap every prompt before encoding, so the longest filled-in text is what must fit. */
function longestExpansion(
  prompt: string,
  templates: readonly string[],
  countTokens: (text: string) => number,
): { tokens: number; templateIndex: number | undefined } {
  if (templates.length === 0) return { tokens: countTokens(prompt), templateIndex: undefined };
  let longest = { tokens: -1, templateIndex: undefined as number | undefined };
  templates.forEach((template, index) => {
    const tokens = countTokens(template.replaceAll('{}', prompt));
    if (tokens > longest.tokens) longest = { tokens, templateIndex: index };
  });
  return longest;
}
