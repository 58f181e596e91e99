// Request intake for image submissions: one function every image route calls to turn a request
// (multipart form, raw image body, or JSON with base64 or a URL) into checked bytes and fields,
// with every size limit enforced while the body streams in.

export {
  type IntakeOptions,
  type OptionalSubmission,
  readImageReference,
  readOptionalSubmission,
  readSubmission,
  type Submission,
  type SubmissionSource,
} from './read-submission.ts';
