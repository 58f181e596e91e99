import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkAgainstCatalog } from '../helpers/catalog-check.ts';
import { hasPromtool, promtool, promtoolMissing } from '../helpers/prometheus.ts';
import { ruleExpressions } from '../helpers/promql.ts';

// deploy/prometheus/alerts.yml through the real tools: `promtool check rules` (syntax, templates) and
// `promtool test rules` (alerts.test.yml feeds input series and expects exactly these alerts).

const rulesDir = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const rulesText = readFileSync(`${rulesDir}alerts.yml`, 'utf8');
const testsText = readFileSync(`${rulesDir}alerts.test.yml`, 'utf8');
const alertNames = [...rulesText.matchAll(/^\s*- alert: (\S+)/gm)].map((match) => match[1]!);

describe('alert rules', () => {
  it('cover backlog, idle workers, latency, webhooks, disabled endpoints, score drift and Redis', () => {
    expect(alertNames).toEqual([
      'ClipmodBacklogGrowing',
      'ClipmodNoWorkerConsuming',
      'ClipmodInferenceLatencyHigh',
      'ClipmodModerationLatencyHigh',
      'ClipmodWebhookFailureRate',
      'ClipmodWebhookEndpointDisabled',
      'ClipmodScoreDistributionShift',
      'ClipmodRedisEvictionPolicy',
      'ClipmodRedisDisconnected',
    ]);
  });

  it('use only metrics and labels the code defines', () => {
    const check = checkAgainstCatalog(ruleExpressions(rulesText));
    expect(check.unknownMetrics).toEqual([]);
    expect(check.unknownLabels).toEqual([]);
    expect(check.used.size).toBeGreaterThan(8);
  });

  it('each have a unit test that expects them to fire', () => {
    const firing = testsText.split('alertname: ').slice(1);
    const tested = new Set(
      firing.filter((part) => /^\S+\s+exp_alerts:\s*\n/.test(part)).map((part) => part.split(/\s/)[0]),
    );
    expect(alertNames.filter((name) => !tested.has(name))).toEqual([]);
  });

  it.skipIf(!hasPromtool)('pass promtool check rules', () => {
    const { status, output } = promtool(['check', 'rules', `${rulesDir}alerts.yml`]);
    expect(output).toContain(`SUCCESS: ${alertNames.length} rules found`);
    expect(status).toBe(0);
  });

  it.skipIf(!hasPromtool)('pass promtool test rules on their input series', () => {
    const { status, output } = promtool(['test', 'rules', `${rulesDir}alerts.test.yml`]);
    expect(output).toContain('SUCCESS');
    expect(output).not.toContain('FAILED');
    expect(status).toBe(0);
  });
});

if (!hasPromtool) console.warn(promtoolMissing);
