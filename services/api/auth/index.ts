// API authentication: bearer keys per tenant with scopes, the admin routes that manage them, and
// the per-key rate limit. Keeps its state in Redis under the deployment's hash-tagged prefix;
// depends on shared/errors and shared/audit (key changes are audited) only, never on other API routes.

export { type ApiKeyRouterDeps, apiKeyRouter } from './api-key-routes.ts';
export {
  type ApiKeyRecord,
  ApiKeyStore,
  type ApiKeyStoreOptions,
  bootstrapKeyId,
  defaultTenant,
  type NewApiKey,
  type Principal,
  type Scope,
  scopes,
} from './api-key-store.ts';
export { authenticate, bearerToken, principalOf, requireScope } from './authenticate.ts';
export { type Auth, type AuthOptions, createAuth } from './create-auth.ts';
export {
  type BucketDecision,
  type BucketSettings,
  type RateLimitOptions,
  rateLimit,
  takeToken,
} from './rate-limit.ts';
