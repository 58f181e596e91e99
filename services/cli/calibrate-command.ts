import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClipmodError } from '../../shared/errors/index.ts';
import { type CliCommand, type CliIo, UsageError } from './command.ts';
import { parseCommandArgs } from './parse-args.ts';

const help = `Usage: clipmod calibrate --policy ID --dir DIR [--url URL] [--target-precision P] [--json]

Proposes a threshold per label from labelled example images. DIR holds one sub-folder per label of
the policy, named by the label id, and one named "negatives" for images that show none of them. The
images are uploaded to a running service (POST /v1/policies/ID/calibrate), which scores them against
the live version through its workers; precision and recall are computed at every threshold.

Options:
  --policy ID             policy to calibrate (required)
  --dir DIR               folder of labelled examples (required)
  --url URL               the service (default http://127.0.0.1:$PORT, PORT default 8080)
  --target-precision P    precision the proposed threshold must reach, in (0, 1] (default 0.95)
  --json                  print the service's full answer, curves included
The API key comes from $CLIPMOD_API_KEY, else $CLIPMOD_ADMIN_KEY (admin scope needed).

Example:
  clipmod calibrate --policy default --dir ./examples --target-precision 0.9`;

const options = {
  policy: { type: 'string' },
  dir: { type: 'string' },
  url: { type: 'string' },
  'target-precision': { type: 'string', default: '0.95' },
  json: { type: 'boolean', default: false },
} as const;

const imageExtensions = /\.(png|jpe?g|webp|gif|avif|tiff?)$/i;

type Calibration = {
  policy: { id: string; version: number };
  thresholds: Record<string, number>;
  labels: {
    label: string;
    positives: number;
    negatives: number;
    proposed: { threshold: number; precision: number; recall: number } | null;
  }[];
};

export const calibrateCommand: CliCommand = {
  path: ['calibrate'],
  summary: 'propose label thresholds from a folder of labelled examples',
  help,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, options);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (!values.policy || !values.dir) throw new UsageError('--policy and --dir are required');
    const targetPrecision = Number(values['target-precision']);
    if (!(targetPrecision > 0 && targetPrecision <= 1))
      throw new UsageError('--target-precision must be in (0, 1]');
    const examples = await readExamples(values.dir);
    const url = values.url ?? `http://127.0.0.1:${io.env.PORT ?? '8080'}`;
    const result = await upload(url, values.policy, { targetPrecision, examples }, io);
    io.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : formatTable(result));
    return 0;
  },
};

async function readExamples(dir: string): Promise<{ label: string; image: { base64: string } }[]> {
  const folders = await readdir(dir, { withFileTypes: true }).catch(() => {
    throw new ClipmodError('bad_request', `cannot read the folder ${dir}`);
  });
  const examples: { label: string; image: { base64: string } }[] = [];
  for (const folder of folders.filter((entry) => entry.isDirectory())) {
    const files = (await readdir(join(dir, folder.name))).filter((name) => imageExtensions.test(name)).sort();
    for (const file of files) {
      const bytes = await readFile(join(dir, folder.name, file));
      examples.push({ label: folder.name, image: { base64: bytes.toString('base64') } });
    }
  }
  if (examples.length === 0) throw new ClipmodError('bad_request', `no images in the sub-folders of ${dir}`);
  return examples;
}

async function upload(url: string, policy: string, body: unknown, io: CliIo): Promise<Calibration> {
  const key = io.env.CLIPMOD_API_KEY ?? io.env.CLIPMOD_ADMIN_KEY;
  if (!key) throw new UsageError('set CLIPMOD_API_KEY (or CLIPMOD_ADMIN_KEY) to an admin key');
  const response = await fetch(`${url}/v1/policies/${encodeURIComponent(policy)}/calibrate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).catch((error: unknown) => {
    throw new ClipmodError('unavailable', `cannot reach ${url}: ${(error as Error).message}`);
  });
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const code = response.status < 500 ? 'bad_request' : 'unavailable';
    throw new ClipmodError(
      code,
      `calibration failed (${response.status}): ${String(answer.detail ?? answer.title ?? '')}`,
    );
  }
  return answer as Calibration;
}

function formatTable(result: Calibration): string {
  const lines = [
    `policy ${result.policy.id} v${result.policy.version}`,
    'label\tcurrent\tproposed\tprecision\trecall\tpositives\tnegatives',
  ];
  for (const label of result.labels) {
    const { proposed } = label;
    const cells = proposed
      ? [proposed.threshold.toFixed(4), proposed.precision.toFixed(3), proposed.recall.toFixed(3)]
      : ['-', '-', '-'];
    lines.push(
      [label.label, result.thresholds[label.label] ?? '-', ...cells, label.positives, label.negatives].join(
        '\t',
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
