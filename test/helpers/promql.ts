// Just enough PromQL reading to check dashboards and alert rules against the metric catalog: which
// metric names an expression selects, and the label names its matchers use. Syntax itself is left to
// promtool; this only has to find names reliably in expressions that already parse.

export type MetricSelector = { name: string; labelNames: string[] };

const keywords = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'offset', 'bool']);
const keywordsWithLabelList = /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g;

/** Grafana's variables as values Prometheus accepts, so dashboard queries can go through promtool. */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?\w+\}?/g, '.*');
}

/** Every metric selector of an expression: `name{a="x", b=~"y"}` → {name, labelNames: [a, b]}. */
export function metricSelectors(expr: string): MetricSelector[] {
  const selectors: MetricSelector[] = [];
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const withoutLists = withoutStrings.replace(keywordsWithLabelList, ' ').replace(/\[[^\]]*\]/g, ' ');
  for (const match of withoutLists.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, matchers, call] = match;
    const previous = withoutLists[match.index - 1] ?? ' ';
    if (call !== undefined || keywords.has(name!) || /[0-9.]/.test(previous)) continue;
    if (/^(inf|nan)$/i.test(name!)) continue;
    const labelNames = [...(matchers ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map(
      (m) => m[1]!,
    );
    selectors.push({ name: name!, labelNames });
  }
  return selectors;
}

type GrafanaNode = { [key: string]: unknown };

/** Every PromQL query of a Grafana dashboard: panel targets (rows included) and query variables. */
export function grafanaQueries(dashboard: GrafanaNode): { where: string; expr: string }[] {
  const queries: { where: string; expr: string }[] = [];
  const visitPanels = (panels: unknown) => {
    for (const panel of (panels ?? []) as GrafanaNode[]) {
      for (const target of (panel.targets ?? []) as GrafanaNode[]) {
        if (typeof target.expr === 'string')
          queries.push({ where: `panel "${panel.title}"`, expr: target.expr });
      }
      visitPanels(panel.panels);
    }
  };
  visitPanels(dashboard.panels);
  const variables = ((dashboard.templating as GrafanaNode | undefined)?.list ?? []) as GrafanaNode[];
  for (const variable of variables.filter((v) => v.type === 'query')) {
    const query = variable.query as string | { query?: string };
    const text = typeof query === 'string' ? query : (query.query ?? '');
    // label_values(selector, label): only the selector is PromQL.
    const selector = /^label_values\((.*),\s*\w+\)$/.exec(text)?.[1] ?? text;
    queries.push({ where: `variable "${variable.name}"`, expr: selector });
  }
  return queries;
}

/** The `expr:` of every rule in a Prometheus rules file (block scalars or one-line values). */
export function ruleExpressions(yamlText: string): { where: string; expr: string }[] {
  const lines = yamlText.split('\n');
  const found: { where: string; expr: string }[] = [];
  let name = '';
  lines.forEach((line, index) => {
    const named = /^\s*-?\s*(?:alert|record):\s*(\S+)/.exec(line);
    if (named) name = named[1]!;
    const expr = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!expr) return;
    if (!/^[|>]-?$/.test(expr[2]!.trim())) {
      found.push({ where: `rule ${name}`, expr: expr[2]! });
      return;
    }
    const indent = expr[1]!.length;
    const body: string[] = [];
    for (const next of lines.slice(index + 1)) {
      if (next.trim() !== '' && next.length - next.trimStart().length <= indent) break;
      body.push(next.trim());
    }
    found.push({ where: `rule ${name}`, expr: body.join('\n').trim() });
  });
  return found;
}
