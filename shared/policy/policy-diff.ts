import type { PolicyDocument, PolicyLabel } from './policy-schema.ts';

// The structured difference between two policy versions, for the version history and the audit log.
// Labels are matched by id (a renamed label reads as one removed and one added). Prompt lists are sets:
// their order never changes a score, so only texts added or removed are reported. One entry per fact,
// flat, so a UI can render it as a list and a test can compare it with toEqual.

export type PolicyChange =
  /** A label, or one prompt of a prompt list (`labels.weapons.prompts`, `baseline`, `templates`). */
  | { op: 'added' | 'removed'; path: string; value: unknown }
  /** A value that changed (`labels.weapons.threshold`, `scoring`); absent values read as null. */
  | { op: 'changed'; path: string; from: unknown; to: unknown };

const labelFields = ['threshold', 'action', 'description'] as const;
const labelLists = ['prompts', 'exclude'] as const;
const policyFields = ['scoring', 'defaultAction', 'description', 'calibrated'] as const;
const policyLists = ['baseline', 'templates'] as const;

/** What changed from `before` to `after`; with no `before` (a new policy) every label and prompt is added. */
export function diffPolicies(before: PolicyDocument | undefined, after: PolicyDocument): PolicyChange[] {
  const changes: PolicyChange[] = [];
  const previous = new Map((before?.labels ?? []).map((label) => [label.id, label]));
  const next = new Map(after.labels.map((label) => [label.id, label]));
  for (const label of before?.labels ?? []) {
    if (!next.has(label.id)) changes.push({ op: 'removed', path: `labels.${label.id}`, value: label });
  }
  for (const label of after.labels) {
    const old = previous.get(label.id);
    if (old === undefined) changes.push({ op: 'added', path: `labels.${label.id}`, value: label });
    else changes.push(...labelChanges(old, label));
  }
  const order = (labels: readonly PolicyLabel[], other: Map<string, PolicyLabel>) =>
    labels.filter((label) => other.has(label.id)).map((label) => label.id);
  const [kept, keptAfter] = [order(before?.labels ?? [], next), order(after.labels, previous)];
  if (kept.join('\n') !== keptAfter.join('\n'))
    changes.push({ op: 'changed', path: 'labels', from: kept, to: keptAfter });
  for (const field of policyLists) changes.push(...listChanges(field, before?.[field], after[field]));
  if (before === undefined) return changes;
  for (const field of policyFields) changes.push(...valueChange(field, before[field], after[field]));
  return changes;
}

function labelChanges(before: PolicyLabel, after: PolicyLabel): PolicyChange[] {
  const path = `labels.${after.id}`;
  return [
    ...labelFields.flatMap((field) => valueChange(`${path}.${field}`, before[field], after[field])),
    ...labelLists.flatMap((field) => listChanges(`${path}.${field}`, before[field], after[field])),
  ];
}

function valueChange(path: string, before: unknown, after: unknown): PolicyChange[] {
  const [from, to] = [before ?? null, after ?? null];
  return from === to ? [] : [{ op: 'changed', path, from, to }];
}

function listChanges(
  path: string,
  before: readonly string[] | undefined,
  after: readonly string[] | undefined,
): PolicyChange[] {
  const [old, next] = [new Set(before ?? []), new Set(after ?? [])];
  return [
    ...[...old].filter((text) => !next.has(text)).map((value) => ({ op: 'removed' as const, path, value })),
    ...[...next].filter((text) => !old.has(text)).map((value) => ({ op: 'added' as const, path, value })),
  ];
}
