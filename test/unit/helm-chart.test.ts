import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { queueNames } from '../../shared/queue/index.ts';
import { type JsonSchema, validate } from '../helpers/json-schema-check.ts';
import { parseYaml, type YamlValue } from '../helpers/yaml-subset.ts';

// helm/clipmod without helm: values (default and examples) against values.schema.json, templates
// against the values they read, the defines they include and the objects the chart must ship.

const chartDir = new URL('../../helm/clipmod/', import.meta.url).pathname;
const read = (path: string) => readFileSync(`${chartDir}${path}`, 'utf8');
const schema = JSON.parse(read('values.schema.json')) as JsonSchema;
const defaults = parseYaml(read('values.yaml')) as Record<string, YamlValue>;
const exampleFiles = readdirSync(`${chartDir}ci`).filter((file) => file.endsWith('-values.yaml'));
const templateFiles = readdirSync(`${chartDir}templates`).filter((file) => /\.(yaml|tpl)$/.test(file));
const templates = new Map(templateFiles.map((file) => [file, read(`templates/${file}`)]));
const allTemplates = [...templates.values()].join('\n');
const roles = ['api', 'inference', 'webhooks'];
/** Every setting and its example value, from .env.example (test/unit/config.test.ts keeps it equal to the schema). */
const settings = new Map(
  [
    ...readFileSync(new URL('../../.env.example', import.meta.url), 'utf8').matchAll(/^([A-Z0-9_]+)=(.*)$/gm),
  ].map((m) => [m[1]!, m[2]!]),
);

type Tree = { [key: string]: YamlValue };
const isTree = (value: unknown): value is Tree =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Helm's merge of user values over the chart's defaults: maps merge, everything else replaces. */
function mergeValues(base: YamlValue, over: YamlValue): YamlValue {
  if (!isTree(base) || !isTree(over)) return over;
  const merged: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = mergeValues(base[key] ?? null, value);
  return merged;
}

function lookup(tree: YamlValue, path: string[]): YamlValue | undefined {
  let node: YamlValue | undefined = tree;
  for (const key of path) node = isTree(node) ? node[key] : undefined;
  return node;
}

describe('values', () => {
  it('validates the default values against values.schema.json', () => {
    expect(validate(schema, defaults)).toEqual([]);
  });

  it.each(exampleFiles)('validates the example %s merged over the defaults', (file) => {
    const example = parseYaml(read(`ci/${file}`));
    expect(validate(schema, mergeValues(defaults, example))).toEqual([]);
  });

  it('rejects an unknown Redis mode, a missing hash tag, a short admin key and an unknown key', () => {
    const bad = mergeValues(defaults, {
      redis: { mode: 'memcached', prefix: 'clipmod' },
      secrets: { adminKey: 'short' },
      replicaCount: 3,
    });
    const problems = validate(schema, bad).join('\n');
    expect(problems).toMatch(/\$\.redis\.mode: must be one of/);
    expect(problems).toMatch(/\$\.redis\.prefix: does not match/);
    expect(problems).toMatch(/\$\.secrets\.adminKey: matches none of anyOf/);
    expect(problems).toMatch(/\$\.replicaCount: not allowed/);
  });

  it('names only real clipmod settings in config and in every role env, defaults and examples', () => {
    const values = [defaults, ...exampleFiles.map((file) => parseYaml(read(`ci/${file}`)))];
    const named = values.flatMap((tree) =>
      [['config'], ...roles.map((role) => [role, 'env'])].flatMap((path) =>
        Object.keys(lookup(tree, path) ?? {}),
      ),
    );
    expect(named.length).toBeGreaterThan(3);
    expect(named.filter((name) => !settings.has(name))).toEqual([]);
  });

  it('gives every role a grace period above its drain deadline, and inference above the job lock', () => {
    const lockMs = Number(settings.get('CLIPMOD_LOCK_DURATION_MS'));
    expect(lockMs).toBeGreaterThan(0);
    for (const role of roles) {
      const graceMs = Number(lookup(defaults, [role, 'terminationGracePeriodSeconds'])) * 1000;
      expect(graceMs).toBeGreaterThan(Number(lookup(defaults, [role, 'shutdownTimeoutMs'])));
    }
    expect(Number(lookup(defaults, ['inference', 'shutdownTimeoutMs']))).toBeGreaterThan(lockMs);
  });
});

describe('templates', () => {
  it('read only values that the defaults define', () => {
    const direct = [...allTemplates.matchAll(/\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map(
      (m) => m[1]!,
    );
    expect(direct.length).toBeGreaterThan(30);
    expect(direct.filter((path) => lookup(defaults, path.slice(1).split('.')) === undefined)).toEqual([]);
    // `$values` is `index $.Values $role` in the per-role ranges: every role must define what they read.
    const perRole = [...allTemplates.matchAll(/\$values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)].map((m) => m[1]!);
    const missing = roles.flatMap((role) =>
      perRole
        .filter((path) => lookup(defaults, [role, ...path.slice(1).split('.')]) === undefined)
        .map((path) => `${role}${path}`),
    );
    expect(perRole.length).toBeGreaterThan(5);
    expect(missing).toEqual([]);
  });

  it('include only defined templates and close every block they open', () => {
    const defined = new Set([...allTemplates.matchAll(/define "([^"]+)"/g)].map((m) => m[1]));
    const included = [...allTemplates.matchAll(/include "([^"]+)"/g)].map((m) => m[1]);
    expect(included.filter((name) => !defined.has(name))).toEqual([]);
    for (const [file, text] of templates) {
      const opened = text.match(/\{\{-?\s*(if|range|with|define)\b/g)?.length ?? 0;
      const closed = text.match(/\{\{-?\s*end\s*-?\}\}/g)?.length ?? 0;
      expect({ file, opened }).toEqual({ file, opened: closed });
    }
  });

  it('ship every object the chart promises', () => {
    const kinds = new Set([...allTemplates.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]));
    expect([...kinds].sort()).toEqual([
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'PrometheusRule',
      'ScaledObject',
      'Secret',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ]);
  });

  it('run each role as `serve <role>` with probes, GPU requests and a configurable grace period', () => {
    const deployments = templates.get('deployments.yaml')!;
    expect(deployments).toMatch(/range \$role := list "api" "inference" "webhooks"/);
    expect(deployments).toMatch(/args: \["serve", \{\{ \$role \| quote \}\}\]/);
    expect(deployments).toMatch(/"nvidia\.com\/gpu"/);
    expect(deployments).toMatch(
      /terminationGracePeriodSeconds: \{\{ \$values\.terminationGracePeriodSeconds \}\}/,
    );
    for (const path of ['/livez', '/readyz']) expect(deployments).toContain(`path: ${path}`);
    expect(deployments).toMatch(/fail .*terminationGracePeriodSeconds must exceed/);
  });

  it('scale inference with KEDA on the BullMQ waiting list of the inference queue', () => {
    expect(templates.get('_helpers.tpl')).toContain(`"%s:${queueNames.inference}:wait"`);
    const keda = templates.get('keda-scaledobject.yaml')!;
    expect(keda).toMatch(/listName: \{\{ include "clipmod\.waitingListKey"/);
    expect(keda).toMatch(/redis-%s/);
  });

  it('build REDIS_URL in the forms shared/redis parses, with the password from a Secret', () => {
    const helper = templates.get('_helpers.tpl')!;
    expect(helper).toMatch(/printf "%s\+%s" \$scheme \$redis\.mode/);
    expect(helper).toContain(':$(REDIS_PASSWORD)@');
    expect(templates.get('deployments.yaml')).toMatch(/- name: REDIS_PASSWORD[\s\S]*- name: REDIS_URL/);
  });
});

describe('files the chart links', () => {
  it('takes the Grafana dashboards and alert rules from deploy/ through symlinks', () => {
    const deployDir = new URL('../../deploy/', import.meta.url).pathname;
    expect(realpathSync(`${chartDir}grafana`)).toBe(realpathSync(`${deployDir}grafana`));
    expect(realpathSync(`${chartDir}prometheus`)).toBe(realpathSync(`${deployDir}prometheus`));
    expect(readdirSync(`${chartDir}grafana`).filter((file) => file.endsWith('.json')).length).toBeGreaterThan(
      0,
    );
    expect(existsSync(`${chartDir}prometheus/alerts.yml`)).toBe(true);
    expect(templates.get('prometheusrule.yaml')).toContain('.Files.Get "prometheus/alerts.yml"');
    expect(templates.get('grafana-dashboards.yaml')).toContain('.Files.Glob "grafana/*.json"');
  });

  it('has a Chart.yaml Helm 3 accepts', () => {
    const chart = parseYaml(read('Chart.yaml')) as Tree;
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'clipmod', type: 'application' });
    expect(String(chart.version)).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
