// Version history and shadow mode on the admin page: each version with its diff, and the summary of a
// candidate scored beside the live version. The page passes in its helpers; `onChange` reloads the history.

let deps;

const plural = (count, noun) => `${count} ${noun}${count === 1 ? '' : 's'}`;

const formatValue = (value) => (typeof value === 'string' ? `“${value}”` : JSON.stringify(value));

function changeItem(change) {
  const { h } = deps;
  if (change.op === 'changed')
    return h('li', {}, `${change.path}: ${formatValue(change.from)} → ${formatValue(change.to)}`);
  return h(
    'li',
    { class: change.op },
    `${change.op === 'added' ? '+' : '−'} ${change.path}: ${formatValue(change.value)}`,
  );
}

function versionItem(entry, liveVersion, shadowVersion) {
  const { h, openPolicy, rollback } = deps;
  const { version } = entry;
  const badges = [
    version === liveVersion && h('span', { class: 'badge live' }, 'live'),
    version === shadowVersion && h('span', { class: 'badge' }, 'shadow'),
  ];
  const origin = entry.rollbackOf === undefined ? entry.kind : `rollback to v${entry.rollbackOf}`;
  const basis = entry.basedOn === null ? 'first version' : `changes from v${entry.basedOn}`;
  return h(
    'li',
    { 'data-version': version },
    h(
      'p',
      {},
      h('strong', {}, `v${version}`),
      ' ',
      badges,
      ` ${origin}, ${new Date(entry.createdAt).toLocaleString()} by ${entry.author} — ${basis}`,
    ),
    entry.diff.length > 0
      ? h('ul', { class: 'diff' }, entry.diff.map(changeItem))
      : h('p', { class: 'hint' }, 'No changes.'),
    h('button', { type: 'button', onclick: () => openPolicy(version) }, `Edit a copy of v${version}`),
    version !== liveVersion &&
      h('button', { type: 'button', onclick: () => rollback(version) }, `Roll back to v${version}`),
  );
}

async function loadShadow(shadowVersion) {
  const { h, call, byId, policyPath } = deps;
  const box = byId('shadow-summary');
  if (shadowVersion === null) {
    box.replaceChildren(
      h(
        'p',
        {},
        'No candidate runs in shadow. “Run this draft in shadow” saves the draft as a candidate that scores live traffic beside the live version; its verdicts are recorded, never acted on.',
      ),
    );
    return;
  }
  const result = await call('GET', policyPath('/shadow/summary'));
  if (!result.ok) return box.replaceChildren(h('p', { class: 'error' }, result.problem.detail));
  const summary = result.data;
  const rate =
    summary.agreementRate === null
      ? 'no comparison yet'
      : `${(summary.agreementRate * 100).toFixed(1)} % agreement`;
  const table = (caption, head, rows) =>
    h(
      'table',
      {},
      h('caption', {}, caption),
      h(
        'tr',
        {},
        head.map((text) => h('th', { scope: 'col' }, text)),
      ),
      rows,
    );
  box.replaceChildren(
    h(
      'p',
      {},
      `v${summary.shadowVersion} runs beside live v${summary.liveVersion}: ${plural(summary.count, 'moderation')}, ${rate}, ${plural(summary.errors, 'shadow error')}.`,
    ),
    table(
      'Actions, live → shadow',
      ['Pair', 'Count'],
      Object.entries(summary.actions).map(([pair, count]) =>
        h('tr', {}, h('td', {}, pair.replace('->', ' → ')), h('td', {}, String(count))),
      ),
    ),
    table(
      'Flips by label',
      ['Label', 'Newly triggered', 'Cleared'],
      Object.entries(summary.flips).map(([label, flips]) =>
        h(
          'tr',
          {},
          h('td', {}, label),
          h('td', {}, String(flips.triggered)),
          h('td', {}, String(flips.cleared)),
        ),
      ),
    ),
    h('button', { type: 'button', onclick: stopShadow }, 'Stop shadow'),
  );
}

async function startShadow() {
  const { call, policyPath, readDraft, showErrors, showStatus, onChange } = deps;
  const result = await call('PUT', policyPath('/shadow'), { policy: readDraft() });
  if (!result.ok) {
    showErrors(result.problem, 'policy.');
    return showStatus(`Shadow not started: ${result.problem.detail}`, true);
  }
  showStatus(`Candidate v${result.data.shadowVersion} runs in shadow.`);
  await onChange();
}

async function stopShadow() {
  const { call, policyPath, showStatus, onChange } = deps;
  const result = await call('DELETE', policyPath('/shadow'));
  if (!result.ok) return showStatus(`Shadow not stopped: ${result.problem.detail}`, true);
  showStatus('Shadow mode stopped.');
  await onChange();
}

/** Wires the history part to the page's helpers; returns what the page calls. */
export function createHistory(helpers) {
  deps = helpers;
  return { versionItem, loadShadow, startShadow };
}
