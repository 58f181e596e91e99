import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { metricCatalog } from '../../shared/metrics/index.ts';
import { checkAgainstCatalog } from '../helpers/catalog-check.ts';
import { hasPromtool, promtool, promtoolMissing } from '../helpers/prometheus.ts';
import {
  grafanaQueries,
  metricSelectors,
  ruleExpressions,
  substituteGrafanaVariables,
} from '../helpers/promql.ts';

// deploy/grafana must only chart what the code exports: every metric name (histogram series resolved)
// and every matcher label is checked against the registry the processes serve.

const grafanaDir = fileURLToPath(new URL('../../deploy/grafana/', import.meta.url));
const alertsFile = fileURLToPath(new URL('../../deploy/prometheus/alerts.yml', import.meta.url));
const files = readdirSync(grafanaDir).filter((file) => file.endsWith('.json'));
const dashboards = files.map((file) => ({
  file,
  json: JSON.parse(readFileSync(join(grafanaDir, file), 'utf8')) as Record<string, any>,
}));
const queriesOf = (file: string, json: Record<string, unknown>) =>
  grafanaQueries(json).map(({ where, expr }) => ({ where: `${file} ${where}`, expr }));
const allQueries = dashboards.flatMap(({ file, json }) => queriesOf(file, json));

describe('PromQL name reader', () => {
  it('finds metric names and matcher labels, not functions, keywords, label lists or durations', () => {
    const expr =
      'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route=~"/v1.*", le!="x"}[5m]))) ' +
      '/ on (route) group_left (x) b_total offset 1d unless c > 1e3';
    expect(metricSelectors(expr)).toEqual([
      { name: 'a_bucket', labelNames: ['route', 'le'] },
      { name: 'b_total', labelNames: [] },
      { name: 'c', labelNames: [] },
    ]);
  });

  it('flags names and labels the code does not define, and resolves histogram series', () => {
    const check = checkAgainstCatalog([
      { where: 'q', expr: 'rate(clipmod_label_score_bucket{le="0.5",policy="p"}[5m])' },
      { where: 'q', expr: 'clipmod_made_up_total + clipmod_verdicts_total{colour="red"}' },
    ]);
    expect(check.unknownMetrics).toEqual(['q: clipmod_made_up_total']);
    expect(check.unknownLabels).toEqual(['q: clipmod_verdicts_total{colour}']);
    expect([...check.used]).toEqual(['clipmod_label_score', 'clipmod_verdicts_total']);
  });
});

describe('Grafana dashboards', () => {
  it('ships the service overview, inference, webhooks and policies dashboards', () => {
    expect(files.sort()).toEqual([
      'inference.json',
      'policies.json',
      'service-overview.json',
      'webhooks.json',
    ]);
    const uids = dashboards.map(({ json }) => json.uid);
    expect(new Set(uids).size).toBe(files.length);
    for (const { file, json } of dashboards) expect(queriesOf(file, json).length, file).toBeGreaterThan(5);
  });

  it('queries only metrics the code defines', () => {
    expect(checkAgainstCatalog(allQueries).unknownMetrics).toEqual([]);
  });

  it('filters only on labels those metrics carry', () => {
    expect(checkAgainstCatalog(allQueries).unknownLabels).toEqual([]);
  });

  it('charts or alerts on every metric of the catalog', () => {
    const alertQueries = ruleExpressions(readFileSync(alertsFile, 'utf8'));
    const used = checkAgainstCatalog([...allQueries, ...alertQueries]).used;
    const unused = Object.values(metricCatalog)
      .map((spec) => spec.name)
      .filter((name) => !used.has(name));
    expect(unused).toEqual([]);
  });

  it('takes its Prometheus data source from the dashboard variable', () => {
    for (const { file, json } of dashboards) {
      const text = JSON.stringify(json);
      const uids = [...text.matchAll(/"type":"prometheus","uid":"([^"]*)"/g)].map((match) => match[1]);
      // Grafana's variable syntax, not a template literal.
      expect(new Set(uids), file).toEqual(new Set(['$' + '{datasource}']));
      expect(json.templating.list[0]).toMatchObject({ name: 'datasource', type: 'datasource' });
    }
  });

  it.skipIf(!hasPromtool)('holds PromQL that Prometheus parses (every query checked by promtool)', () => {
    const rules = allQueries.map(
      ({ expr }, index) =>
        `      - record: dashboard:query_${index}\n        expr: ${JSON.stringify(substituteGrafanaVariables(expr))}`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'clipmod-dashboards-'));
    try {
      writeFileSync(
        join(dir, 'rules.yml'),
        `groups:\n  - name: dashboards\n    rules:\n${rules.join('\n')}\n`,
      );
      const { status, output } = promtool(['check', 'rules', join(dir, 'rules.yml')]);
      expect(output).toContain(`SUCCESS: ${allQueries.length} rules found`);
      expect(status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

if (!hasPromtool) console.warn(promtoolMissing);
