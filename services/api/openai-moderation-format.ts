import { type ClipmodError, errorCatalog } from '../../shared/errors/index.ts';
import type { Verdict } from '../../shared/policy/index.ts';

// OpenAI's moderation response and error shapes, built from clipmod verdicts and errors. Pure: the
// route in openai-routes.ts does the I/O. Category keys are the policy's label ids, not OpenAI's
// fixed list (SDKs type them, but read them as a plain map at run time).

export type OpenAiInputType = 'text' | 'image';

export type OpenAiModerationResult = {
  flagged: boolean;
  categories: Record<string, boolean>;
  category_scores: Record<string, number>;
  category_applied_input_types: Record<string, OpenAiInputType[]>;
};

export type OpenAiErrorBody = {
  error: { message: string; type: string; param: string | null; code: string };
};

/** A result that moderated nothing (text): every label present, none triggered, scores 0. */
export function unscoredResult(labelIds: readonly string[]): OpenAiModerationResult {
  const result: OpenAiModerationResult = {
    flagged: false,
    categories: {},
    category_scores: {},
    category_applied_input_types: {},
  };
  for (const id of labelIds) {
    result.categories[id] = false;
    result.category_scores[id] = 0;
    result.category_applied_input_types[id] = [];
  }
  return result;
}

/**
 * One result for every image of an input: per label the highest score and whether any image
 * triggered it; flagged when any verdict is. Labels keep the order of the first verdict's policy;
 * a label only a later verdict knows (a policy edited mid-request) is appended.
 */
export function resultFromVerdicts(verdicts: readonly Verdict[]): OpenAiModerationResult {
  const result = unscoredResult([]);
  for (const verdict of verdicts) {
    result.flagged ||= verdict.flagged;
    for (const label of verdict.labels) {
      result.categories[label.id] = (result.categories[label.id] ?? false) || label.triggered;
      result.category_scores[label.id] = Math.max(result.category_scores[label.id] ?? 0, label.score);
      result.category_applied_input_types[label.id] = ['image'];
    }
  }
  return result;
}

/**
 * OpenAI's error envelope. `code` is clipmod's stable code (OpenAI's SDKs branch on the HTTP status,
 * not on `type`); `param` names the offending request field when the error knows it.
 */
export function openAiErrorBody(error: ClipmodError): OpenAiErrorBody {
  const field = error.details.field;
  return {
    error: {
      message: error.message,
      type: errorCatalog[error.code].status >= 500 ? 'server_error' : 'invalid_request_error',
      param: typeof field === 'string' ? field : null,
      code: error.code,
    },
  };
}
