// The Node.js releases ssekit is tested on, and where their binaries come from: the npm
// registry's `node-<platform>-<arch>` package at a pinned version of each major, which is how the
// `node` package itself installs. Used by `pnpm test:matrix` and by `pnpm bench --node`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The release of each major that users run: bump these on purpose. */
export const NODE_VERSIONS = { 20: '20.20.2', 22: '22.23.5', 24: '24.22.3', 26: '26.12.1' };

const CACHE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '.node-versions');

/**
 * The path of a node binary of exactly `version`: the running one when it is that version,
 * otherwise one fetched from the npm registry into .node-versions/ (once).
 */
export function nodeBinary(version) {
  if (process.version === `v${version}`) return process.execPath;
  const name = `node-${process.platform}-${process.arch}`;
  const dir = path.join(CACHE, version);
  const binary = path.join(dir, 'package', 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  if (!existsSync(binary)) {
    console.log(`[node-versions] fetching ${name}@${version} from the npm registry`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    // npm checks the tarball against the registry's integrity hash.
    const output = execFileSync('npm', ['pack', `${name}@${version}`, '--silent', '--pack-destination', dir], { encoding: 'utf8' });
    const tarball = path.join(dir, output.trim().split('\n').pop());
    execFileSync('tar', ['-xzf', tarball, '-C', dir]);
    rmSync(tarball);
  }
  const reported = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  if (reported !== `v${version}`) throw new Error(`${binary} reports ${reported}, not v${version}`);
  return binary;
}

/** A binary for `spec`: a major with a pinned release (`24`), or a path to a node binary. */
export function resolveNode(spec) {
  const version = NODE_VERSIONS[spec];
  if (version) return nodeBinary(version);
  if (/^\d+$/.test(spec)) throw new Error(`No pinned Node.js release for major ${spec}; known: ${Object.keys(NODE_VERSIONS).join(', ')}`);
  return spec;
}
