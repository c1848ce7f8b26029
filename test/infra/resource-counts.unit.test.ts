/**
 * The resource counts docs/operating/deploy.md states are the template's:
 * its table ("Resources in the default template … (N)") is parsed — a row
 * per type, the default count, and "M with `-c key=value`" for another
 * setting's count — and compared with the template synthesized in each of
 * those configurations, both ways: a type the template has and the table
 * lacks fails too. So does the page's "All N functions".
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/function.ts';
import { removeAssemblies, synthRoster, type TemplateJson } from './support.ts';

afterAll(removeAssemblies);

const PAGE = readFileSync(path.join(PROJECT_ROOT, 'docs/operating/deploy.md'), 'utf8');

/** Values the page elides (`arn:aws:sns:…`), for the synth. */
const SAMPLE_VALUES: Record<string, string> = { alarmTopicArn: 'arn:aws:sns:eu-west-1:111122223333:ops-alarms' };

/** `npx cdk synth` reports the CDK version in the template (AWS::CDK::Metadata); the in-process synth does so when asked. */
const AS_CDK_SYNTH = { 'aws:cdk:version-reporting': true };

interface DocumentedCounts {
  total: number;
  /** Type → count in the default template. */
  counts: Map<string, number>;
  /** `key=value` → type → count with that setting. */
  variants: Map<string, Map<string, number>>;
}

function documentedCounts(page: string): DocumentedCounts {
  const heading = /^Resources in the default template \(`npx cdk synth`; (\d+)\)/m.exec(page);
  if (!heading) throw new Error('deploy.md has no "Resources in the default template (`npx cdk synth`; N)" paragraph');
  const rows = page
    .slice(heading.index)
    .split('\n\n')
    .find((block) => block.startsWith('| Type |'));
  if (!rows) throw new Error('deploy.md has no resource table after that paragraph');
  const counts = new Map<string, number>();
  const variants = new Map<string, Map<string, number>>();
  for (const row of rows.split('\n').slice(2)) {
    const cells = row.split(' | ');
    const type = /^\| `(AWS::[A-Za-z0-9]+::[A-Za-z0-9]+)`$/.exec(cells[0] ?? '')?.[1];
    const count = /^\d+$/.test(cells[1] ?? '') ? Number(cells[1]) : undefined;
    if (type === undefined || count === undefined) throw new Error(`a row of the resource table is not "| \`Type\` | count | notes |": ${row}`);
    expect(counts.has(type), `${type} appears once`).toBe(false);
    counts.set(type, count);
    for (const [, n, key, value] of (cells[2] ?? '').matchAll(/(\d+) with `-c (\w+)=([^`]*)`/g)) {
      const setting = `${key}=${value}`;
      variants.set(setting, (variants.get(setting) ?? new Map<string, number>()).set(type, Number(n)));
    }
  }
  return { total: Number(heading[1]), counts, variants };
}

function countsOf(json: TemplateJson): Map<string, number> {
  const counts = new Map<string, number>();
  for (const resource of Object.values(json.Resources)) counts.set(resource.Type, (counts.get(resource.Type) ?? 0) + 1);
  return counts;
}

/** The table's counts for every type it lists or the template has, with the documented count for what changed. */
const asRecord = (types: Iterable<string>, count: (type: string) => number): Record<string, number> =>
  Object.fromEntries([...new Set(types)].sort().map((type) => [type, count(type)]));

const documented = documentedCounts(PAGE);

describe('the resource counts of docs/operating/deploy.md', () => {
  const template = countsOf(synthRoster(AS_CDK_SYNTH).json);

  it('are the default template\'s, type by type, and its total', () => {
    const types = [...documented.counts.keys(), ...template.keys()];
    expect(asRecord(types, (t) => documented.counts.get(t) ?? NaN)).toEqual(asRecord(types, (t) => template.get(t) ?? 0));
    expect(documented.total).toBe([...template.values()].reduce((a, b) => a + b, 0));
  });

  it('state how many functions there are', () => {
    const functions = [...PAGE.matchAll(/\bAll (\d+) functions\b/g)].map((m) => Number(m[1]));
    expect(functions.length).toBeGreaterThan(0);
    for (const n of functions) expect(n).toBe(template.get('AWS::Lambda::Function'));
  });

  it('name the settings that change a count', () => {
    expect([...documented.variants.keys()].sort()).toEqual(['alarmTopicArn=arn:aws:sns:…', 'createApiGatewayLogsRole=true', 'webSocketAccessLogs=true']);
  });

  for (const [setting, changed] of documented.variants) {
    it(`are the template's with -c ${setting} too`, () => {
      const [key, value] = setting.split(/=(.*)/s) as [string, string];
      const variant = countsOf(synthRoster({ ...AS_CDK_SYNTH, [key]: value.includes('…') ? SAMPLE_VALUES[key] : value }).json);
      // A type whose count the table does not give for this setting keeps its default count.
      const expected = (t: string) => changed.get(t) ?? documented.counts.get(t) ?? 0;
      const types = [...documented.counts.keys(), ...variant.keys()];
      expect(asRecord(types, expected)).toEqual(asRecord(types, (t) => variant.get(t) ?? 0));
    });
  }
});
