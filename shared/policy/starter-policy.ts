import { readFileSync } from 'node:fs';
import { type PolicyDocument, type ValidatePolicyOptions, validatePolicy } from './policy-schema.ts';

// The starter policy shipped with clipmod (starter-policy.json beside this file): common harm categories
// with prompt sets, exclude prompts, a neutral baseline, templates and starting thresholds, marked
// `calibrated: false` until someone tunes it on real data with real weights. Installed per tenant by
// `clipmod policy install-starter`; kept as JSON so admins can read, copy and diff it.

export const starterPolicyUrl = new URL('./starter-policy.json', import.meta.url);

/** The starter policy, validated (with the model's tokenizer when given, as a PUT would be). */
export function starterPolicy(options: ValidatePolicyOptions = {}): PolicyDocument {
  return validatePolicy(JSON.parse(readFileSync(starterPolicyUrl, 'utf8')), options);
}
