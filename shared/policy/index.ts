// Moderation policies: the document schema (labels as prompts with excludes, thresholds, actions),
// the versioned store in Redis with diffs, audit log, shadow pointer and change channel for hot reload,
// shadow-mode tallies, the starter policy, and the pure verdict decision. Must not depend on the CLIP
// model, ONNX, express or any service: the tokenizer arrives as a function.
export {
  decideVerdict,
  type LabelResult,
  type Verdict,
  type VerdictEvidence,
  type VerdictLabel,
} from './decide-verdict.ts';
export type { PolicyAuditAction, PolicyAuditEvent, PolicyAuditPage } from './policy-audit.ts';
export {
  type PolicyChangeMessage,
  parsePolicyChangeMessage,
  policyChangedChannel,
} from './policy-change-channel.ts';
export { diffPolicies, type PolicyChange } from './policy-diff.ts';
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
  type PolicyHistory,
  type PolicyPutResult,
  PolicyStore,
  type PolicyStoreOptions,
  type PolicySummary,
  type PolicyVersionKind,
  type PolicyVersionSummary,
  type PolicyWriteOptions,
  type StoredPolicy,
} from './policy-store.ts';
export {
  compareVerdicts,
  type LabelFlip,
  type ShadowOutcome,
  ShadowStats,
  type ShadowStatsOptions,
  type ShadowSummary,
  type VerdictComparison,
} from './shadow-stats.ts';
export { starterPolicy, starterPolicyUrl } from './starter-policy.ts';
