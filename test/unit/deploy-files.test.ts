import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { roles } from '../../services/cli/serve-roles.ts';
import { parseYaml, type YamlValue } from '../helpers/yaml-subset.ts';

// deploy/ without a Docker engine: the Dockerfile's targets run entries this repository has and copy
// files that exist; docker-compose.yml references only services, volumes and files that exist.

const repoDir = new URL('../../', import.meta.url).pathname;
const deployDir = join(repoDir, 'deploy');
const read = (path: string) => readFileSync(join(repoDir, path), 'utf8');

type Instruction = { op: string; args: string };
type Stage = { name: string; base: string; instructions: Instruction[] };

/** Stages of a Dockerfile: continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stages: Stage[] = [];
  for (const line of lines.map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op.toUpperCase() === 'FROM') {
      const [, base = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ name: name ?? `#${stages.length}`, base, instructions: [] });
    } else stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

const stages = parseDockerfile(read('deploy/docker/Dockerfile'));
const stageNamed = (name: string) => stages.find((stage) => stage.name === name);

/** A stage and the stages it is built FROM, nearest first. */
function chain(name: string): Stage[] {
  const stage = stageNamed(name);
  return stage ? [stage, ...chain(stage.base)] : [];
}

/** The last value of an instruction along the chain (ENTRYPOINT, CMD, USER are inherited). */
function effective(name: string, op: string): string | undefined {
  for (const stage of chain(name)) {
    const found = stage.instructions.filter((instruction) => instruction.op === op).at(-1);
    if (found) return found.args;
  }
  return undefined;
}

const targets = { api: 'api', inference: 'inference', 'inference-cuda': 'inference', webhooks: 'webhooks' };

describe('deploy/docker/Dockerfile', () => {
  it('has a multi-stage target per role', () => {
    expect(stages.length).toBeGreaterThan(Object.keys(targets).length);
    for (const target of Object.keys(targets)) expect(stageNamed(target)?.name).toBe(target);
  });

  it.each(Object.entries(targets))(
    'runs target %s as `serve %s` from the sources under tini',
    (target, role) => {
      const command = [
        ...(JSON.parse(effective(target, 'ENTRYPOINT') ?? '[]') as string[]),
        ...(JSON.parse(effective(target, 'CMD') ?? '[]') as string[]),
      ];
      expect(command).toEqual([
        '/usr/bin/tini',
        '--',
        'node',
        '--import',
        'tsx',
        'services/cli/main.ts',
        'serve',
        role,
      ]);
      expect(existsSync(join(repoDir, command[5]!))).toBe(true);
      expect(roles as readonly string[]).toContain(role);
      const installsTini = chain(target).some((stage) =>
        stage.instructions.some(({ op, args }) => op === 'RUN' && /apt-get install[^&]*\btini\b/.test(args)),
      );
      expect(installsTini).toBe(true);
      expect(effective(target, 'USER')).toBe('10001:10001');
    },
  );

  it('copies only files that exist and stages that are defined, none of them ignored', () => {
    const ignored = read('deploy/docker/Dockerfile.dockerignore')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'));
    const copies = stages.flatMap((stage) => stage.instructions.filter(({ op }) => op === 'COPY'));
    expect(copies.length).toBeGreaterThan(5);
    for (const { args } of copies) {
      const from = /--from=(\S+)/.exec(args)?.[1];
      const paths = args.split(/\s+/).filter((part) => !part.startsWith('--'));
      if (from) {
        expect(stages.map((stage) => stage.name)).toContain(from);
        continue;
      }
      for (const source of paths.slice(0, -1)) {
        expect({ source, exists: existsSync(join(repoDir, source)) }).toEqual({ source, exists: true });
        expect(ignored).not.toContain(source.split('/')[0]);
      }
    }
  });

  it('installs production dependencies only, so tsx must be one, and fetches the CUDA provider', () => {
    const packageJson = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    expect(stageNamed('deps')?.instructions.some(({ args }) => args.includes('npm ci --omit=dev'))).toBe(
      true,
    );
    expect(Object.keys(packageJson.dependencies)).toContain('tsx');
    const cudaInstall = chain('deps-cuda')
      .flatMap((stage) => stage.instructions)
      .find(({ args }) => args.includes('install.js'));
    expect(cudaInstall?.args).toMatch(
      /ONNXRUNTIME_NODE_INSTALL=cuda12 node (node_modules\/onnxruntime-node\/script\/install\.js)/,
    );
    expect(existsSync(join(repoDir, 'node_modules/onnxruntime-node/script/install.js'))).toBe(true);
    expect(
      stageNamed('inference-cuda')
        ?.instructions.map(({ args }) => args)
        .join('\n'),
    ).toContain('--from=deps-cuda');
  });
});

type Service = {
  image?: string;
  build?: { context: string; dockerfile: string; target: string };
  environment?: Record<string, YamlValue>;
  volumes?: string[];
  depends_on?: string[] | Record<string, unknown>;
  command?: string[];
};
const compose = parseYaml(read('deploy/docker-compose.yml')) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = Object.entries(compose.services);
const clipmodServices = services.filter(([, service]) => service.build !== undefined);

describe('deploy/docker-compose.yml', () => {
  it('runs Redis, every role, Prometheus and Grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['api', 'grafana', 'inference', 'inference-cuda', 'prometheus', 'redis', 'webhooks'].sort(),
    );
    const redis = compose.services.redis!.command!.join(' ');
    expect(redis).toMatch(/--maxmemory-policy noeviction/);
    expect(redis).toMatch(/--appendonly yes/);
  });

  it('depends only on defined services', () => {
    const dependencies = services.flatMap(([, service]) =>
      Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {}),
    );
    expect(dependencies.length).toBeGreaterThan(4);
    expect(dependencies.filter((name) => !(name in compose.services))).toEqual([]);
  });

  it('mounts only declared volumes and existing files, and declares no unused volume', () => {
    const sources = services.flatMap(([, service]) =>
      (service.volumes ?? []).map((mount) => mount.split(':')[0]!),
    );
    const named = sources.filter((source) => !source.startsWith('.') && !source.startsWith('/'));
    const bound = sources.filter((source) => source.startsWith('.'));
    expect(named.filter((name) => !(name in compose.volumes))).toEqual([]);
    expect(Object.keys(compose.volumes).filter((name) => !named.includes(name))).toEqual([]);
    expect(bound.length).toBeGreaterThan(3);
    expect(bound.filter((path) => !existsSync(join(deployDir, path)))).toEqual([]);
  });

  it('builds each clipmod service from a Dockerfile target, setting only real settings', () => {
    // .env.example lists every setting (test/unit/config.test.ts keeps it equal to the schema).
    const settings = new Set([...read('.env.example').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(clipmodServices.map(([name]) => name).sort()).toEqual([
      'api',
      'inference',
      'inference-cuda',
      'webhooks',
    ]);
    for (const [name, { build, environment }] of clipmodServices) {
      const dockerfile = join(deployDir, build!.context, build!.dockerfile);
      expect(existsSync(dockerfile)).toBe(true);
      expect(parseDockerfile(readFileSync(dockerfile, 'utf8')).map((stage) => stage.name)).toContain(
        build!.target,
      );
      expect(build!.target).toBe(name);
      expect(Object.keys(environment ?? {}).filter((key) => !settings.has(key))).toEqual([]);
    }
  });

  it('documents every variable it interpolates in deploy/.env.example', () => {
    const used = new Set(
      [...read('deploy/docker-compose.yml').matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]),
    );
    const documented = new Set(
      [...read('deploy/.env.example').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]),
    );
    expect([...used].filter((name) => !documented.has(name))).toEqual([]);
  });

  it('points Prometheus at the roles and the mounted rules, and Grafana at the mounted dashboards', () => {
    const prometheus = parseYaml(read('deploy/compose/prometheus.yml')) as Record<string, any>;
    const prometheusMounts = compose.services.prometheus!.volumes!.map((mount) => mount.split(':')[1]);
    for (const file of prometheus.rule_files as string[]) expect(prometheusMounts).toContain(file);
    const targetsOf = (job: Record<string, any>): string[] => [
      ...(job.static_configs ?? []).flatMap((config: { targets: string[] }) => config.targets),
      ...(job.dns_sd_configs ?? []).flatMap((config: { names: string[]; port: number }) =>
        config.names.map((name) => `${name}:${config.port}`),
      ),
    ];
    const targets = (prometheus.scrape_configs as Record<string, any>[]).flatMap(targetsOf);
    expect(targets.sort()).toEqual(['api:8080', 'inference-cuda:9464', 'inference:9464', 'webhooks:9464']);
    const dashboards = parseYaml(read('deploy/compose/grafana-dashboards.yml')) as Record<string, any>;
    const grafanaMounts = compose.services.grafana!.volumes!;
    expect(grafanaMounts).toContain(`./grafana:${dashboards.providers[0].options.path}:ro`);
    const datasources = parseYaml(read('deploy/compose/grafana-datasources.yml')) as Record<string, any>;
    expect(new URL(datasources.datasources[0].url).host).toBe('prometheus:9090');
  });
});
