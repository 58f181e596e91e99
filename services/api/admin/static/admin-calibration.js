// Threshold calibration on the admin page: example images per label plus negatives are sent to the
// calibrate route, which scores them against the live version; each label's precision/recall curve is
// drawn as an inline SVG (built with createElementNS, styled from admin.css: no inline style under
// the CSP) and its proposed threshold can be copied into the draft, where saving makes it live.

const svgNs = 'http://www.w3.org/2000/svg';
const chart = { width: 520, height: 240, left: 44, right: 16, top: 12, bottom: 36 };
/** The API's limit per call. */
const maxExamples = 500;

/** admin.js's helpers (see createCalibration). */
let page;
/** The saved policy in the editor; undefined: none. */
let policyId;
const byId = (id) => document.getElementById(id);
const h = (...parts) => page.h(...parts);

function renderInputs(labels) {
  const inputs = labels
    .map((label) => label.id)
    .filter((id) => id !== '')
    .flatMap((label, index) => {
      const id = `calibrate-${index}`;
      return [
        h('label', { for: id }, `Examples of ${label}`),
        h('input', {
          id,
          type: 'file',
          multiple: true,
          'data-label': label,
          accept: 'image/png,image/jpeg,image/webp,image/gif',
        }),
      ];
    });
  byId('calibration-inputs').replaceChildren(...inputs);
  byId('calibration-result').replaceChildren();
}

async function collectExamples() {
  const inputs = [...document.querySelectorAll('#calibration-inputs input[type="file"]')];
  const chosen = inputs.flatMap((input) => [...input.files].map((file) => [input.dataset.label, file]));
  chosen.push(...[...byId('calibrate-negatives').files].map((file) => ['negatives', file]));
  return Promise.all(
    chosen.map(async ([label, file]) => ({ label, image: { base64: await base64Of(file) } })),
  );
}

async function run(event) {
  event.preventDefault();
  const output = byId('calibration-result');
  const examples = await collectExamples();
  if (examples.length === 0 || examples.length > maxExamples) {
    output.replaceChildren(h('p', { class: 'error' }, `Choose 1 to ${maxExamples} images.`));
    return;
  }
  const targetPrecision = Number(byId('target-precision').value);
  output.setAttribute('aria-busy', 'true');
  output.replaceChildren(h('p', {}, `Scoring ${examples.length} images…`));
  const path = `/policies/${encodeURIComponent(policyId)}/calibrate`;
  const result = await page.call('POST', path, { targetPrecision, examples });
  output.removeAttribute('aria-busy');
  if (!result.ok) {
    output.replaceChildren(h('p', { class: 'error' }, `Not calibrated: ${result.problem.detail}`));
    return;
  }
  const { policy, thresholds, labels } = result.data;
  output.replaceChildren(
    h('p', {}, `Scored ${examples.length} images against ${policy.id} v${policy.version}.`),
    ...labels.map((label) => labelView(label, thresholds[label.label], result.data.targetPrecision)),
  );
}

function labelView(calibration, current, targetPrecision) {
  const { label, proposed, positives, negatives } = calibration;
  const counts = `${positives} examples, ${negatives} negatives; current threshold ${current}`;
  if (proposed === null) {
    const reason = positives === 0 ? 'no examples of this label' : `no threshold reaches ${targetPrecision}`;
    return h(
      'div',
      { class: 'calibration', 'data-label': label },
      h('h3', {}, `Label ${label}`),
      h('p', {}, `No proposal: ${reason} (${counts}).`),
    );
  }
  const value = thresholdOf(proposed.threshold);
  const summary = `Proposed threshold ${value}: precision ${proposed.precision.toFixed(3)}, recall ${proposed.recall.toFixed(3)} (${counts}).`;
  return h(
    'div',
    { class: 'calibration', 'data-label': label, 'data-proposed': value },
    h('h3', {}, `Label ${label}`),
    h('p', { class: 'proposal' }, summary),
    curveChart(calibration, targetPrecision, value, `chart-${label}`),
    h(
      'p',
      { class: 'hint' },
      'Solid blue: precision; dashed green: recall; dotted: the target precision; red: the proposed threshold.',
    ),
    h(
      'button',
      { type: 'button', onclick: () => apply(label, value) },
      `Apply ${value} to ${label} in the draft`,
    ),
    curveTable(calibration.curve),
  );
}

function apply(label, value) {
  if (page.applyThreshold(label, value))
    page.showStatus(`Threshold of ${label} set to ${value} in the draft: save to make it live.`);
  else page.showStatus(`The draft has no label ${label}.`, true);
}

function curveTable(curve) {
  const rows = curve.map((point) =>
    h(
      'tr',
      {},
      [thresholdOf(point.threshold), point.precision.toFixed(3), point.recall.toFixed(3)].map((text) =>
        h('td', {}, text),
      ),
    ),
  );
  const head = ['Threshold', 'Precision', 'Recall'].map((text) => h('th', { scope: 'col' }, text));
  return h(
    'details',
    {},
    h('summary', {}, 'Curve as a table'),
    h('table', {}, h('thead', {}, h('tr', {}, head)), h('tbody', {}, rows)),
  );
}

/**
 * `helpers`: `h`, `call`, `showStatus`, and `applyThreshold(label, value)` (sets the draft's field;
 * false when the draft has no such label). Answers `showPolicy(id, labels)` like admin-beyond.js.
 */
export function createCalibration(helpers) {
  page = helpers;
  byId('calibration-form').addEventListener('submit', run);
  return {
    showPolicy(id, labels) {
      policyId = id;
      byId('calibration').hidden = id === undefined;
      if (id !== undefined) renderInputs(labels);
    },
  };
}

/** Four decimals, rounded down: the proposed point's own score still reaches it. */
function thresholdOf(score) {
  return String(Math.floor(score * 1e4) / 1e4);
}

function base64Of(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener('load', () => resolve(String(reader.result).split(',', 2)[1] ?? ''));
    reader.addEventListener('error', () => reject(reader.error));
    reader.readAsDataURL(file);
  });
}

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/** Precision and recall (y, 0 to 1) against the threshold (x, over the scores seen), as step lines. */
function curveChart(calibration, targetPrecision, proposed, id) {
  const points = [...calibration.curve].sort((a, b) => a.threshold - b.threshold);
  const scale = chartScale(points);
  const { x, y, low, high } = scale;
  const line = (name) =>
    svg('polyline', {
      class: name,
      points: stepPoints(points, name, low)
        .map(([threshold, value]) => `${x(threshold).toFixed(1)},${y(value).toFixed(1)}`)
        .join(' '),
    });
  const proposedX = x(Number(proposed));
  const describe = `${points.length} thresholds from ${low} to ${high}; proposed ${proposed} where precision reaches ${targetPrecision}.`;
  return svg(
    'svg',
    {
      class: 'pr-chart',
      viewBox: `0 0 ${chart.width} ${chart.height}`,
      role: 'img',
      'aria-labelledby': `${id}-title ${id}-desc`,
    },
    svg(
      'title',
      { id: `${id}-title` },
      `Precision (solid) and recall (dashed) of ${calibration.label} by threshold`,
    ),
    svg('desc', { id: `${id}-desc` }, describe),
    svg('rect', { class: 'frame', x: x(low), y: y(1), width: x(high) - x(low), height: y(0) - y(1) }),
    svg('line', { class: 'target', x1: x(low), x2: x(high), y1: y(targetPrecision), y2: y(targetPrecision) }),
    svg('line', { class: 'proposed', x1: proposedX, x2: proposedX, y1: y(1), y2: y(0) }),
    line('precision'),
    line('recall'),
    ...axisLabels(scale),
    proposedNote(proposed, proposedX, y(0.08), x((low + high) / 2)),
  );
}

/** x over the scores seen, widened to tenths (at least 0.1 wide); y from 0 to 1. */
function chartScale(points) {
  const scores = points.map((point) => point.threshold);
  let [low, high] = [Math.floor(Math.min(...scores) * 10) / 10, Math.ceil(Math.max(...scores) * 10) / 10];
  if (high - low < 0.1) [low, high] = [Math.max(0, low - 0.05), low + 0.1];
  const innerWidth = chart.width - chart.left - chart.right;
  const innerHeight = chart.height - chart.top - chart.bottom;
  return {
    low,
    high,
    x: (threshold) => chart.left + ((threshold - low) / (high - low)) * innerWidth,
    y: (value) => chart.top + (1 - value) * innerHeight,
  };
}

function axisLabels({ x, y, low, high }) {
  const text = (content, at, anchor) => svg('text', { ...at, 'text-anchor': anchor }, content);
  const below = chart.height - 18;
  return [
    text('1', { x: x(low) - 6, y: y(1) + 4 }, 'end'),
    text('0', { x: x(low) - 6, y: y(0) + 4 }, 'end'),
    text(String(low), { x: x(low), y: below }, 'middle'),
    text(String(high), { x: x(high), y: below }, 'middle'),
    text('threshold', { x: x((low + high) / 2), y: chart.height - 4 }, 'middle'),
  ];
}

/**
 * A threshold between two seen scores flags what the higher one flags, so each value holds from the
 * score below up to its own: two corners per point, ending at the highest score.
 */
function stepPoints(ascending, name, low) {
  const corners = [];
  ascending.forEach((point, index) => {
    const from = index === 0 ? low : ascending[index - 1].threshold;
    corners.push([from, point[name]], [point.threshold, point[name]]);
  });
  return corners;
}

/** The note beside the proposed line, on whichever side has room. */
function proposedNote(proposed, lineX, textY, middleX) {
  const isLeft = lineX > middleX;
  return svg(
    'text',
    { x: lineX + (isLeft ? -4 : 4), y: textY, 'text-anchor': isLeft ? 'end' : 'start' },
    `proposed ${proposed}`,
  );
}
