import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** How long a demo token is good for: short, so that a long-lived page has to refresh it. */
const TOKEN_TTL_MS = 60_000;

/**
 * Bearer tokens for the client page, as a login would hand them out: `POST /token` issues one,
 * `/secure-events` accepts a request only with a token that is still good. An EventSource
 * cannot send such a header; `@ssekit/client` asks for a fresh one on every (re)connect.
 */
export interface Tokens {
  issue(): { token: string; expiresInMs: number };
  /** Whether an `Authorization` header carries a token that is still good. */
  allows(authorization: string | undefined): boolean;
}

export function createTokens(ttlMs = TOKEN_TTL_MS): Tokens {
  const expiries = new Map<string, number>();
  return {
    issue() {
      const now = Date.now();
      for (const [token, expiry] of expiries) if (expiry <= now) expiries.delete(token);
      const token = randomUUID();
      expiries.set(token, now + ttlMs);
      return { token, expiresInMs: ttlMs };
    },
    allows(authorization) {
      const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
      return token !== undefined && (expiries.get(token) ?? 0) > Date.now();
    },
  };
}

/** The built `@ssekit/client`'s files, served to the client page as ES modules. */
export interface ClientFiles {
  /** A file's text by its name (`index.js` and the chunks it imports), or undefined. */
  get(name: string): string | undefined;
}

/** Serves the files of `dist`, the built client's directory. */
export function createClientFiles(dist: string): ClientFiles {
  return {
    get(name) {
      if (!/^[\w-]+\.js$/.test(name)) return undefined;
      try {
        return readFileSync(path.join(dist, name), 'utf8');
      } catch {
        return undefined;
      }
    },
  };
}

/** What the client page needs from the server: tokens, and the client's files. */
export interface Secure {
  readonly tokens: Tokens;
  readonly clientFiles: ClientFiles;
}
