// Reads the .cpuprofile files `node --cpu-prof` wrote (one per thread) and lists, per thread, how busy
// it was and which functions took its time: the "profile" behind a ratio that misses its target.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

type ProfileNode = { id: number; callFrame: { functionName: string; url: string }; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

export type ThreadSummary = {
  file: string;
  seconds: number;
  busySeconds: number;
  /** Self time of the busiest functions, `name (file)`, in seconds. */
  top: { name: string; seconds: number }[];
};

function frameName(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  const file = url.split('/').pop() ?? '';
  if (url.startsWith('wasm://')) return 'WebAssembly (resample kernels)';
  return file === '' ? functionName || '(anonymous)' : `${functionName || '(anonymous)'} (${file})`;
}

export function summarizeProfile(path: string, topCount = 8): ThreadSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const micros = profile.timeDeltas[i] ?? 0;
    total += micros;
    const name = frameName(nodes.get(id)!);
    selfMicros.set(name, (selfMicros.get(name) ?? 0) + micros);
  });
  const idle = selfMicros.get('(idle)') ?? 0;
  const top = [...selfMicros]
    .filter(([name]) => name !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, topCount)
    .map(([name, micros]) => ({ name, seconds: micros / 1e6 }));
  return { file: path, seconds: total / 1e6, busySeconds: (total - idle) / 1e6, top };
}

/** Every profile in `dir`, busiest thread first. */
export function summarizeProfiles(dir: string): ThreadSummary[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => summarizeProfile(join(dir, name)))
    .sort((a, b) => b.busySeconds - a.busySeconds);
}
