import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** nginx in front of test servers, as production runs them: see {@link startNginx}. */
export interface NginxProxy {
  /** `http://127.0.0.1:<port>`, where nginx listens. */
  readonly url: string;
  /** What nginx wrote to its error log so far (timeouts, upstream errors). */
  errorLog(): Promise<string>;
  /** Stops nginx, waits for it to exit and removes its directory. Idempotent. */
  close(): Promise<void>;
}

export interface NginxOptions {
  /**
   * Path prefixes and the origins they proxy to: `{ '/a/': 'http://127.0.0.1:3000' }` sends
   * `/a/events` to `http://127.0.0.1:3000/events`.
   */
  locations: Readonly<Record<string, string>>;
  /** Extra directives for every location, such as `proxy_read_timeout 1s;`. */
  directives?: readonly string[];
}

const SEARCH_PATH = ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin', '/opt/homebrew/bin', '/usr/local/bin'];
const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 5000;
const STOP_TIMEOUT_MS = 3000;

/**
 * Finds the nginx binary: `NGINX_BIN`, then `PATH`, then where distributions install it.
 * @throws when nginx is not installed, with how to install it. The proxy tests fail on this,
 * they never skip.
 */
export function findNginx(): string {
  const candidates = [
    process.env.NGINX_BIN,
    ...(process.env.PATH ?? '')
      .split(path.delimiter)
      .filter(Boolean)
      .map((dir) => path.join(dir, 'nginx')),
    ...SEARCH_PATH.map((dir) => path.join(dir, 'nginx')),
  ];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here; try the next one.
    }
  }
  throw new Error(
    'nginx is not installed, and the reverse-proxy tests need it. Install it (Debian/Ubuntu: ' +
      '`apt-get install -y nginx`) or point NGINX_BIN at the binary. Looked in PATH and ' +
      `${SEARCH_PATH.join(', ')}.`,
  );
}

/**
 * Starts nginx as a reverse proxy on 127.0.0.1 with its default buffering (`proxy_buffering on`),
 * in the foreground, as a child of this process, with its files in a fresh temporary directory.
 * Resolves once nginx answers HTTP on its port. Retries on another port when the one picked was
 * taken in the meantime.
 */
export async function startNginx({ locations, directives = [] }: NginxOptions): Promise<NginxProxy> {
  const binary = findNginx();
  const dir = await mkdtemp(path.join(tmpdir(), 'ssekit-nginx-'));
  const failures: string[] = [];
  try {
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort();
      const token = randomUUID();
      const conf = path.join(dir, 'nginx.conf');
      await writeFile(conf, renderConfig({ dir, port, token, locations, directives }));
      const child = spawn(binary, ['-e', path.join(dir, 'error.log'), '-p', `${dir}/`, '-c', conf], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        if (stderr.length < 10_000) stderr += chunk;
      });
      const url = `http://127.0.0.1:${port}`;
      const ready = await waitUntilServing(child, url, token);
      if (ready === true) {
        // Should the test process exit without closing it, nginx must not outlive it.
        const killOnExit = () => child.kill('SIGKILL');
        process.once('exit', killOnExit);
        let closing: Promise<void> | undefined;
        return {
          url,
          errorLog: () => readFile(path.join(dir, 'error.log'), 'utf8').catch(() => ''),
          close: () =>
            (closing ??= stop(child).finally(() => {
              process.off('exit', killOnExit);
              return rm(dir, { recursive: true, force: true });
            })),
        };
      }
      await stop(child);
      const log = await readFile(path.join(dir, 'error.log'), 'utf8').catch(() => '');
      failures.push(`attempt ${attempt} on port ${port}: ${ready}\n${stderr}${log}`.trim());
      // Only a port taken between picking it and binding it is worth another try.
      if (!/address already in use/i.test(stderr + log)) break;
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`nginx (${binary}) did not start:\n${failures.join('\n\n')}`);
}

function renderConfig({
  dir,
  port,
  token,
  locations,
  directives,
}: {
  dir: string;
  port: number;
  token: string;
  locations: Readonly<Record<string, string>>;
  directives: readonly string[];
}): string {
  const proxied = Object.entries(locations).map(([prefix, origin]) => {
    if (!/^\/[\w/-]*\/$/.test(prefix)) throw new Error(`a location must look like /name/, not ${JSON.stringify(prefix)}`);
    if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(origin))
      throw new Error(`an upstream must be http://127.0.0.1:<port>, not ${JSON.stringify(origin)}`);
    return [
      `    location ${prefix} {`,
      `      proxy_pass ${origin}/;`,
      // Keep-alive to the upstream, as production does. proxy_buffering stays at its default: on.
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      ...directives.map((directive) => `      ${directive}`),
      '    }',
    ].join('\n');
  });
  return [
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log;`,
    'events { worker_connections 64; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}/body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi;`,
    `  scgi_temp_path ${dir}/scgi;`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    // Readiness probe: the token proves that this nginx answers, not whoever else took the port.
    `    location = /__nginx_ready { return 200 "${token}"; }`,
    ...proxied,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A port that was free a moment ago: listen on port 0 with a throwaway server. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls the probe until nginx answers with `token`: `true`, or why it never did. */
async function waitUntilServing(child: ChildProcess, url: string, token: string): Promise<true | string> {
  let exit: string | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null) => (exit = `nginx exited (code ${code}, signal ${signal})`);
  const onError = (error: Error) => (exit = `nginx could not run: ${error.message}`);
  child.once('exit', onExit);
  child.once('error', onError);
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exit) return exit;
      if ((await probe(`${url}/__nginx_ready`)) === token) return exit ?? true;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return exit ?? `nginx did not answer on ${url} within ${START_TIMEOUT_MS} ms`;
  } finally {
    child.off('exit', onExit);
    child.off('error', onError);
  }
}

function probe(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false, timeout: 500 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.once('end', () => resolve(body));
      response.once('error', () => resolve(undefined));
    });
    request.once('timeout', () => request.destroy());
    request.once('error', () => resolve(undefined));
  });
}

/** SIGTERM is nginx's fast shutdown, which drops open connections; SIGKILL if it lingers. */
function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
