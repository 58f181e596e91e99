// Moderation policies: the document schema (labels as prompts, thresholds, actions), the versioned
// store in Redis with its change channel for hot reload, and the pure verdict decision. Must not
// depend on the CLIP model, ONNX, express or any service: the tokenizer arrives as a function.
export { decideVerdict, type LabelResult, type Verdict, type VerdictLabel } from './decide-verdict.ts';
export {
  formatFieldPath,
  maxPromptChars,
  maxPromptTokens,
  type PolicyAction,
  type PolicyDocument,
  type PolicyFieldError,
  type PolicyLabel,
  policyActions,
  policyDocumentSchema,
  policyIdPattern,
  type ValidatePolicyOptions,
  validatePolicy,
} from './policy-schema.ts';
export {
  checkPolicyId,
  type PolicyChangeMessage,
  type PolicyHistory,
  type PolicyPutResult,
  PolicyStore,
  type PolicyStoreOptions,
  type PolicySummary,
  type PolicyVersionSummary,
  parsePolicyChangeMessage,
  policyChangedChannel,
  type StoredPolicy,
} from './policy-store.ts';
