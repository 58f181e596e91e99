// The policy admin page: edit a policy, test the draft on an image (dry run), browse versions with
// their diffs, roll back, follow shadow mode. It calls the policy API under /admin/api, where the
// session cookie authorizes it. The DOM is built with createElement and textContent only, never from
// HTML strings: policy texts are user input, and the page runs under Trusted Types. The bank, search,
// retention settings and calibration live in their own modules, which get this one's helpers.

import { createBeyond } from './admin-beyond.js';
import { createCalibration } from './admin-calibration.js';
import { createHistory } from './admin-history.js';

const apiRoot = '/admin/api/v1';
const actions = ['allow', 'review', 'block'];
const dryRunDelayMs = 300;

const state = {
  /** The policy being edited, and whether it has no saved version yet. */
  id: '',
  isNew: false,
  /** The loaded document: fields the form does not show (descriptions, calibrated) are kept from it. */
  document: {},
  image: undefined,
  previewUrl: '',
  dryRunTimer: 0,
  dryRun: undefined,
};
/** The label each fieldset was rendered from, so its hidden fields survive an edit. */
const labelOrigins = new WeakMap();

const byId = (id) => document.getElementById(id);

/** An element with attributes (`on…` become listeners, false/undefined are skipped) and children. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(
    ...children.flat().filter((child) => child !== undefined && child !== null && child !== false),
  );
  return element;
}

function showStatus(message, isError = false) {
  const status = byId('status');
  status.textContent = message;
  status.classList.toggle('error', isError);
}

const policyPath = (suffix = '') => `/policies/${encodeURIComponent(state.id)}${suffix}`;

/** One API call; answers `{ok, data}` or `{ok: false, problem}` (the problem+json body), never throws. */
async function call(method, path, body, signal) {
  const init = { method, headers: { accept: 'application/json' }, signal };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${apiRoot}${path}`, init);
  } catch (error) {
    if (error.name === 'AbortError') return { ok: false, isAborted: true, problem: {} };
    return { ok: false, problem: { detail: `the service did not answer (${error.message})` } };
  }
  if (response.status === 401) {
    const next = `${location.pathname}${location.search}`;
    location.assign(`/admin/login?next=${encodeURIComponent(next)}`);
    return { ok: false, problem: { detail: 'the session ended: sign in again' } };
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (response.ok) return { ok: true, data };
  return { ok: false, problem: data ?? { detail: `${response.status} ${response.statusText}` } };
}

const lines = (text) =>
  text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');

/** A number when the field holds one; otherwise the text, so the API names the field in its error. */
function numberOrText(text) {
  const value = Number(text);
  return text.trim() !== '' && Number.isFinite(value) ? value : text;
}

/** A label, its control and the element that shows the API's error for `path`. */
function field(path, text, control) {
  const id = path.replace(/[^a-zA-Z0-9]+/g, '-');
  control.id = id;
  control.dataset.path = path;
  control.setAttribute('aria-describedby', `${id}-error`);
  return [h('label', { for: id }, text), control, h('p', { id: `${id}-error`, class: 'field-error' })];
}

function labelFieldset(label, index) {
  const path = `labels[${index}]`;
  const select = h('select', { 'data-field': 'action' });
  for (const action of actions)
    select.append(h('option', { value: action, selected: action === label.action }, action));
  const threshold = h('input', { type: 'number', min: 0, max: 1, step: 0.01, 'data-field': 'threshold' });
  threshold.value = String(label.threshold ?? '');
  const identifier = h('input', { type: 'text', autocomplete: 'off', 'data-field': 'id' });
  identifier.value = label.id ?? '';
  const fieldset = h(
    'fieldset',
    { class: 'label' },
    h('legend', {}, `Label ${index + 1}`),
    h('div', { class: 'row' }, h('div', {}, field(`${path}.id`, 'Id', identifier))),
    field(`${path}.prompts`, 'Prompts (one per line)', textarea('prompts', label.prompts)),
    field(
      `${path}.exclude`,
      'Exclude prompts: look-alikes that must not count (one per line)',
      textarea('exclude', label.exclude),
    ),
    h(
      'div',
      { class: 'row' },
      h('div', {}, field(`${path}.threshold`, 'Threshold (0 to 1)', threshold)),
      h('div', {}, field(`${path}.action`, 'Action', select)),
    ),
    h(
      'button',
      { type: 'button', class: 'remove', onclick: () => removeLabel(index) },
      `Remove label ${index + 1}`,
    ),
  );
  labelOrigins.set(fieldset, label);
  return fieldset;
}

/** One text per line, with a row to spare so the whole list shows. */
function setLines(element, values = []) {
  element.rows = Math.max(2, values.length + 1);
  element.value = values.join('\n');
}

function textarea(name, values) {
  const element = h('textarea', { 'data-field': name });
  setLines(element, values);
  return element;
}

/** The form as a policy document, with the loaded document's hidden fields kept. */
function readDraft() {
  const labels = [...byId('labels').querySelectorAll('fieldset.label')].map((fieldset) => {
    const value = (name) => fieldset.querySelector(`[data-field="${name}"]`).value;
    const exclude = lines(value('exclude'));
    return {
      ...labelOrigins.get(fieldset),
      id: value('id').trim(),
      prompts: lines(value('prompts')),
      exclude: exclude.length > 0 ? exclude : undefined,
      threshold: numberOrText(value('threshold')),
      action: value('action'),
    };
  });
  const templates = lines(byId('templates').value);
  return {
    ...state.document,
    labels,
    scoring: byId('scoring').value,
    baseline: lines(byId('baseline').value),
    templates: templates.length > 0 ? templates : undefined,
  };
}

function renderLabels(labels) {
  byId('labels').replaceChildren(...labels.map(labelFieldset));
}

function renderEditor(policy, versionNote) {
  state.document = policy;
  byId('policy-name').textContent = state.id;
  byId('policy-version').textContent = versionNote;
  renderLabels(policy.labels ?? []);
  byId('scoring').value = policy.scoring ?? 'softmax';
  setLines(byId('baseline'), policy.baseline);
  setLines(byId('templates'), policy.templates);
  clearErrors();
  for (const id of ['editor', 'dry-run', 'history', 'shadow']) byId(id).hidden = false;
  byId('history').hidden = state.isNew;
  byId('shadow').hidden = state.isNew;
  byId('empty-state').hidden = true;
  for (const part of beyondParts) part.showPolicy(state.isNew ? undefined : state.id, policy.labels ?? []);
}

/** Calibration's proposal for a label, into the draft; false when the draft has no such label. */
function applyThreshold(labelId, threshold) {
  const fieldset = [...byId('labels').querySelectorAll('fieldset.label')].find(
    (candidate) => candidate.querySelector('[data-field="id"]').value.trim() === labelId,
  );
  if (fieldset === undefined) return false;
  const input = fieldset.querySelector('[data-field="threshold"]');
  input.value = String(threshold);
  input.focus();
  scheduleDryRun();
  return true;
}

function removeLabel(index) {
  const draft = readDraft();
  renderLabels(draft.labels.filter((_label, i) => i !== index));
  scheduleDryRun();
}

function clearErrors() {
  byId('form-errors').replaceChildren();
  for (const control of document.querySelectorAll('[aria-invalid="true"]'))
    control.removeAttribute('aria-invalid');
  for (const element of document.querySelectorAll('.field-error')) element.textContent = '';
}

/** The control for an API error path: `labels[0].prompts[2]` is line 3 of label 1's prompts. */
function controlFor(path) {
  let current = path;
  let line;
  while (current !== '') {
    const control = document.querySelector(`[data-path="${CSS.escape(current)}"]`);
    if (control !== null) return { control, line };
    const item = /^(.*)\[(\d+)\]$/.exec(current);
    line = item === null ? undefined : Number(item[2]) + 1;
    current = item === null ? current.slice(0, Math.max(0, current.lastIndexOf('.'))) : item[1];
  }
  return undefined;
}

/** The API's field-path errors next to their fields, and all of them in the summary. */
function showErrors(problem, pathPrefix = '') {
  clearErrors();
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  const items = errors.map(({ path, message }) => {
    const local = path.startsWith(pathPrefix) ? path.slice(pathPrefix.length) : path;
    const target = controlFor(local);
    if (target === undefined) return h('li', {}, `${local}: ${message}`);
    const { control, line } = target;
    control.setAttribute('aria-invalid', 'true');
    const note = byId(control.getAttribute('aria-describedby'));
    note.textContent = [note.textContent, line === undefined ? message : `line ${line}: ${message}`]
      .filter(Boolean)
      .join('; ');
    return h('li', {}, h('a', { href: `#${control.id}` }, local), `: ${message}`);
  });
  byId('form-errors').replaceChildren(
    h('p', {}, problem.detail ?? 'The request failed.'),
    h('ul', {}, items),
  );
}

async function loadPolicyList() {
  const result = await call('GET', '/policies');
  if (!result.ok) {
    showStatus(`Policies could not be listed: ${result.problem.detail}`, true);
    return [];
  }
  const policies = result.data.data;
  const items = policies.map(({ id, version }) =>
    h(
      'li',
      {},
      h(
        'a',
        { href: `/admin?policy=${encodeURIComponent(id)}`, 'aria-current': id === state.id && 'page' },
        id,
      ),
      ' ',
      h('span', { class: 'badge' }, `v${version}`),
    ),
  );
  byId('policy-list').replaceChildren(
    ...(items.length > 0 ? items : [h('li', { class: 'hint' }, 'No policies yet.')]),
  );
  return policies;
}

async function openPolicy(version) {
  const result = await call('GET', policyPath(version === undefined ? '' : `?version=${version}`));
  if (!result.ok) return showStatus(`Policy ${state.id} could not be read: ${result.problem.detail}`, true);
  const note = version === undefined ? `live v${result.data.version}` : `a copy of v${version}`;
  renderEditor(result.data.document, note);
  scheduleDryRun();
  if (version === undefined) await loadHistory();
  else showStatus(`Version ${version} is in the editor: saving makes it a new version.`);
}

async function save(event) {
  event.preventDefault();
  const result = await call('PUT', policyPath(), readDraft());
  if (!result.ok) {
    showErrors(result.problem);
    return showStatus('Not saved: see the marked fields.', true);
  }
  state.isNew = false;
  history.replaceState(null, '', `/admin?policy=${encodeURIComponent(state.id)}`);
  renderEditor(result.data.document, `live v${result.data.version}`);
  showStatus(`Saved version ${result.data.version}.`);
  scheduleDryRun();
  await Promise.all([loadPolicyList(), loadHistory()]);
}

function scheduleDryRun() {
  clearTimeout(state.dryRunTimer);
  if (state.image !== undefined) state.dryRunTimer = setTimeout(runDryRun, dryRunDelayMs);
}

/** Scores the chosen image against the draft as it stands; a newer run cancels an older one. */
async function runDryRun() {
  state.dryRun?.abort();
  const controller = new AbortController();
  state.dryRun = controller;
  const body = new FormData();
  body.append('policy', JSON.stringify(readDraft()));
  body.append('image', state.image);
  const output = byId('dry-run-result');
  output.setAttribute('aria-busy', 'true');
  const result = await call('POST', policyPath('/test'), body, controller.signal);
  if (result.isAborted) return;
  output.removeAttribute('aria-busy');
  if (!result.ok) {
    if (Array.isArray(result.problem.errors)) showErrors(result.problem, 'policy.');
    output.replaceChildren(h('p', { class: 'error' }, `Not scored: ${result.problem.detail}`));
    return;
  }
  clearErrors();
  output.replaceChildren(...verdictView(result.data));
}

function verdictView({ verdict, model }) {
  const rows = verdict.labels.map((label) => {
    const { prompt, frame, suppressedBy } = label.evidence;
    const evidence = [
      `“${prompt}”`,
      frame === undefined ? '' : ` (frame ${frame})`,
      suppressedBy === undefined ? '' : `, suppressed by “${suppressedBy}”`,
    ].join('');
    return h(
      'tr',
      { 'data-label': label.id, 'data-triggered': String(label.triggered) },
      h('th', { scope: 'row' }, label.id),
      h('td', {}, h('meter', { min: 0, max: 1, value: label.score }), ` ${label.score.toFixed(3)}`),
      h('td', {}, String(label.threshold)),
      h('td', {}, label.triggered ? 'yes' : 'no'),
      h('td', {}, label.action),
      h('td', {}, evidence),
    );
  });
  const head = ['Label', 'Score', 'Threshold', 'Triggered', 'Action', 'Evidence'];
  return [
    h(
      'p',
      { id: 'verdict', class: `verdict verdict-${verdict.action}` },
      `Verdict: ${verdict.action}`,
      verdict.flagged && ' (flagged)',
    ),
    h(
      'table',
      {},
      h('caption', {}, `Per-label scores of the draft (model ${model})`),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          head.map((text) => h('th', { scope: 'col' }, text)),
        ),
      ),
      h('tbody', {}, rows),
    ),
  ];
}

function chooseImage(file) {
  if (file === undefined) return;
  state.image = file;
  URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  const preview = byId('preview');
  preview.src = state.previewUrl;
  preview.hidden = false;
  clearTimeout(state.dryRunTimer);
  runDryRun();
}

async function loadHistory() {
  const result = await call('GET', policyPath('/versions'));
  if (!result.ok) return showStatus(`History could not be read: ${result.problem.detail}`, true);
  const { liveVersion, shadowVersion, data } = result.data;
  const newestFirst = [...data].sort((a, b) => b.version - a.version);
  byId('versions').replaceChildren(
    ...newestFirst.map((entry) => versionHistory.versionItem(entry, liveVersion, shadowVersion)),
  );
  await versionHistory.loadShadow(shadowVersion);
}

async function rollback(version) {
  const result = await call('POST', policyPath('/rollback'), { version });
  if (!result.ok) return showStatus(`Not rolled back: ${result.problem.detail}`, true);
  renderEditor(result.data.document, `live v${result.data.version}`);
  showStatus(`Rolled back: v${result.data.version} is a copy of v${version}.`);
  scheduleDryRun();
  await Promise.all([loadPolicyList(), loadHistory()]);
}

function wireEvents() {
  const form = byId('policy-form');
  form.addEventListener('submit', save);
  form.addEventListener('input', scheduleDryRun);
  form.addEventListener('change', scheduleDryRun);
  byId('add-label').addEventListener('click', () => {
    const draft = readDraft();
    renderLabels([...draft.labels, { id: '', prompts: [], threshold: 0.5, action: 'review' }]);
    byId(`labels-${draft.labels.length}-id`).focus();
  });
  byId('shadow-start').addEventListener('click', () => versionHistory.startShadow());
  byId('image-input').addEventListener('change', (event) => chooseImage(event.target.files[0]));
  const zone = byId('drop-zone');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    chooseImage(event.dataTransfer.files[0]);
  });
  byId('sign-out').addEventListener('click', async () => {
    await fetch('/admin/session', { method: 'DELETE' });
    location.assign('/admin/login?next=%2Fadmin');
  });
}

const pageHelpers = { h, call, showStatus, applyThreshold };
const versionHistory = createHistory({
  h,
  call,
  byId,
  policyPath,
  readDraft,
  showErrors,
  showStatus,
  openPolicy,
  rollback,
  onChange: () => loadHistory(),
});
const beyondParts = [createBeyond(pageHelpers), createCalibration(pageHelpers)];

async function start() {
  wireEvents();
  const policies = await loadPolicyList();
  const id = new URLSearchParams(location.search).get('policy');
  if (id === null || id === '') return;
  state.id = id;
  state.isNew = !policies.some((policy) => policy.id === id);
  if (!state.isNew) return openPolicy();
  const starter = {
    labels: [{ id: '', prompts: [], threshold: 0.5, action: 'review' }],
    scoring: 'softmax',
    baseline: [],
  };
  renderEditor(starter, 'new, not saved yet');
}

start();
