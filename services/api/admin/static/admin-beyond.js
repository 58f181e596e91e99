// The admin page's features built on retained embeddings: the tenant's retention settings, search over
// screened images (text or image query), and each label's known-bad bank. admin.js owns the page and
// passes its helpers in; like it, this module builds the DOM with createElement and textContent only.

const secondsPerDay = 86_400;

/** admin.js's helpers: `h` (element builder), `call` (one API call, never throws), `showStatus`. */
let page;
/** The saved policy in the editor, whose labels' banks are shown; undefined: none. */
let policyId;
const byId = (id) => document.getElementById(id);
const h = (...parts) => page.h(...parts);

async function loadSettings() {
  const result = await page.call('GET', '/tenant-settings');
  if (!result.ok) return page.showStatus(`Settings could not be read: ${result.problem.detail}`, true);
  renderSettings(result.data);
}

function renderSettings(settings) {
  byId('retention-enabled').checked = settings.retention.enabled;
  byId('retention-days').value = String(Number((settings.retention.ttlSeconds / secondsPerDay).toFixed(3)));
  byId('bank-distance').value = String(settings.bank.maxCosineDistance);
}

async function saveSettings(event) {
  event.preventDefault();
  const days = Number(byId('retention-days').value);
  const body = {
    retention: { enabled: byId('retention-enabled').checked, ttlSeconds: Math.round(days * secondsPerDay) },
    bank: { maxCosineDistance: Number(byId('bank-distance').value) },
  };
  const result = await page.call('PUT', '/tenant-settings', body);
  const errors = byId('settings-errors');
  if (!result.ok) {
    errors.replaceChildren(h('p', {}, `Not saved: ${result.problem.detail}`));
    return page.showStatus('Settings not saved.', true);
  }
  errors.replaceChildren();
  renderSettings(result.data);
  const kept = result.data.retention.enabled ? 'embeddings are kept' : 'nothing is kept';
  page.showStatus(`Settings saved: ${kept}.`);
}

/** Text (`q`) or image query; a newer search replaces the results of an older one. */
async function search(query) {
  const k = byId('search-k').value || '10';
  const output = byId('search-results');
  output.setAttribute('aria-busy', 'true');
  const result =
    query.text === undefined
      ? await page.call('POST', `/search?k=${encodeURIComponent(k)}`, imageForm(query.image))
      : await page.call('GET', `/search?q=${encodeURIComponent(query.text)}&k=${encodeURIComponent(k)}`);
  output.removeAttribute('aria-busy');
  if (!result.ok) {
    output.replaceChildren(h('p', { class: 'error' }, `Search failed: ${result.problem.detail}`));
    return;
  }
  const caption = query.text === undefined ? `Images similar to ${query.image.name}` : `“${query.text}”`;
  output.replaceChildren(searchTable(result.data, caption));
}

function searchTable({ model, data }, caption) {
  if (data.length === 0) return h('p', { id: 'search-empty' }, 'No retained image matches yet.');
  const rows = data.map((hit, index) =>
    h(
      'tr',
      { 'data-moderation': hit.moderationId },
      h('td', {}, String(index + 1)),
      h('td', {}, h('meter', { min: -1, max: 1, value: hit.score }), ` ${hit.score.toFixed(3)}`),
      h('th', { scope: 'row' }, h('code', {}, hit.moderationId)),
      h(
        'td',
        { class: `verdict-${hit.verdict.action}` },
        hit.verdict.action,
        hit.verdict.triggered.length > 0 ? ` (${hit.verdict.triggered.join(', ')})` : '',
      ),
      h('td', {}, `${hit.verdict.policy.id} v${hit.verdict.policy.version}`),
      h('td', {}, new Date(hit.retainedAt).toLocaleString()),
    ),
  );
  const head = ['Rank', 'Score', 'Moderation', 'Verdict (labels)', 'Policy', 'Screened'];
  return h(
    'table',
    { id: 'search-table' },
    h('caption', {}, `${caption}: best first, cosine similarity (model ${model})`),
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
  );
}

const bankPath = (label) =>
  `/policies/${encodeURIComponent(policyId)}/labels/${encodeURIComponent(label)}/bank`;

async function renderBank(labels) {
  const ids = labels.map((label) => label.id).filter((id) => id !== '');
  byId('bank-labels').replaceChildren(...ids.map(bankBlock));
  await Promise.all(ids.map(loadBank));
}

function bankBlock(label, index) {
  const file = h('input', {
    id: `bank-${index}-file`,
    type: 'file',
    required: true,
    accept: 'image/png,image/jpeg,image/webp,image/gif',
  });
  const note = h('input', { id: `bank-${index}-note`, type: 'text', maxlength: 200, autocomplete: 'off' });
  const form = h(
    'form',
    { class: 'bank-add', onsubmit: (event) => addToBank(event, label, file, note) },
    h('label', { for: file.id }, 'Example image'),
    file,
    h('label', { for: note.id }, 'Note (optional, e.g. a case number)'),
    note,
    h('button', { type: 'submit' }, `Add to the bank of ${label}`),
  );
  return h(
    'div',
    { class: 'bank-label', 'data-label': label },
    h('h3', {}, `Label ${label}`),
    h('ul', { class: 'bank-entries' }),
    form,
  );
}

const bankBlockOf = (label) => byId('bank-labels').querySelector(`[data-label="${CSS.escape(label)}"]`);

async function loadBank(label) {
  const result = await page.call('GET', bankPath(label));
  const list = bankBlockOf(label)?.querySelector('.bank-entries');
  if (list === undefined || list === null) return;
  if (!result.ok) return list.replaceChildren(h('li', { class: 'error' }, result.problem.detail));
  const items = result.data.data.map((entry) =>
    h(
      'li',
      { 'data-entry': entry.id },
      h('code', {}, entry.id),
      ` ${entry.note ?? '(no note)'} — added ${new Date(entry.createdAt).toLocaleString()}, model ${entry.model} `,
      h('button', { type: 'button', onclick: () => removeFromBank(label, entry.id) }, `Remove ${entry.id}`),
    ),
  );
  list.replaceChildren(...(items.length > 0 ? items : [h('li', { class: 'hint' }, 'No examples yet.')]));
}

async function addToBank(event, label, file, note) {
  event.preventDefault();
  const image = file.files[0];
  if (image === undefined) return page.showStatus('Choose an image to add to the bank.', true);
  const body = new FormData();
  // Fields before the file: the intake reads the form in order.
  if (note.value.trim() !== '') body.append('note', note.value.trim());
  body.append('image', image);
  const result = await page.call('POST', bankPath(label), body);
  if (!result.ok) return page.showStatus(`Not added to the bank: ${result.problem.detail}`, true);
  file.value = '';
  note.value = '';
  page.showStatus(`Added ${result.data.id} to the bank of ${label}.`);
  await loadBank(label);
}

async function removeFromBank(label, entryId) {
  const path = `/policies/${encodeURIComponent(policyId)}/bank/${encodeURIComponent(entryId)}`;
  const result = await page.call('DELETE', path);
  if (!result.ok) return page.showStatus(`Not removed: ${result.problem.detail}`, true);
  page.showStatus(`Removed ${entryId} from the bank of ${label}.`);
  await loadBank(label);
}

function wireEvents() {
  byId('settings-form').addEventListener('submit', saveSettings);
  byId('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    search({ text: byId('search-q').value });
  });
  const input = byId('search-image');
  input.addEventListener('change', () => input.files[0] && search({ image: input.files[0] }));
  const zone = byId('search-drop');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const image = event.dataTransfer.files[0];
    if (image !== undefined) search({ image });
  });
}

/**
 * `helpers`: `h` (element builder), `call` (one API call, never throws), `showStatus`.
 * Answers `showPolicy(id, labels)`: the bank follows the policy in the editor (undefined: none saved).
 */
export function createBeyond(helpers) {
  page = helpers;
  wireEvents();
  loadSettings();
  return {
    showPolicy(id, labels) {
      policyId = id;
      byId('bank').hidden = id === undefined;
      if (id !== undefined) renderBank(labels);
    },
  };
}

function imageForm(image) {
  const body = new FormData();
  body.append('image', image);
  return body;
}
