/**
 * @ssekit/web, with core's main entry inside, needs nothing from Node: esbuild bundles it for
 * `platform: 'neutral'` with no Node built-in in the output, and the bundle runs a stream and a
 * channel with replay in a bare V8 context that has web globals only (no Buffer, no process).
 * Deno and Bun provide Node's globals too, and would hide a leak; this context does not.
 */
import { builtinModules } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { build } from 'esbuild';
import { bundleWeb } from './runtimes.js';

const WEB_ENTRY = path.resolve(__dirname, '..', 'dist', 'index.js');

test('the neutral bundle imports no Node built-in', async () => {
  const { text } = await bundleWeb();
  expect(text).toContain('createSseResponse');
  const builtins = builtinModules.filter((name) => !name.startsWith('_'));
  const imported = [...text.matchAll(/(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']([^"']+)["']/g)].map(([, specifier]) => specifier!);
  expect(imported.filter((specifier) => specifier.startsWith('node:') || builtins.includes(specifier))).toEqual([]);
  // And nothing reaches for Node's globals by name, but for the one guarded lookup of
  // diagnostics_channel, which finds nothing where there is no `process`.
  const lookups = text.match(/\S*\bprocess\b\S*\(\S*/g) ?? [];
  expect(lookups).toEqual(['runtime.process?.getBuiltinModule?.("node:diagnostics_channel");']);
  expect(text).not.toMatch(/\bBuffer\.|\bprocess\.|\bsetImmediate\(/);
});

test('the bundle runs a stream and a channel with replay in a context with web globals only', async () => {
  const result = await build({
    entryPoints: [WEB_ENTRY],
    bundle: true,
    format: 'iife',
    globalName: 'ssekit',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    write: false,
    logLevel: 'silent',
  });
  const context = vm.createContext({
    // What a Worker has; nothing of Node's.
    TextEncoder,
    TextDecoder,
    ReadableStream,
    Request,
    Response,
    Headers,
    URL,
    AbortController,
    AbortSignal,
    Event,
    EventTarget,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    queueMicrotask,
    performance,
    console,
  });
  vm.runInContext(result.outputFiles[0]!.text, context);
  const outcome = (await vm.runInContext(
    `(async () => {
      const { createChannel, createSseResponse } = ssekit;
      const read = async (response, count) => {
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let text = '';
        while ((text.match(/\\n\\n/g) ?? []).length < count) text += decoder.decode((await reader.read()).value, { stream: true });
        await reader.cancel();
        return text;
      };
      const channel = createChannel();
      const first = createSseResponse(new Request('http://worker/events'), (stream) => channel.subscribe(stream), { keepAliveMs: 0 });
      await new Promise((resolve) => setTimeout(resolve, 0)); // the handler subscribes
      for (let n = 1; n <= 3; n++) await channel.publish({ event: 'n', data: { n } });
      const live = await read(first, 4);
      const resumed = createSseResponse(new Request('http://worker/events', { headers: { 'last-event-id': '1' } }), (stream) => channel.subscribe(stream));
      const replay = await read(resumed, 2);
      await channel.close();
      return { live, replay, status: first.status, type: first.headers.get('content-type'), buffer: typeof Buffer, process: typeof process };
    })()`,
    context,
  )) as Record<string, unknown>;
  expect(outcome).toEqual({
    live: 'id: 0\n\nevent: n\nid: 1\ndata: {"n":1}\n\nevent: n\nid: 2\ndata: {"n":2}\n\nevent: n\nid: 3\ndata: {"n":3}\n\n',
    replay: 'event: n\nid: 2\ndata: {"n":2}\n\nevent: n\nid: 3\ndata: {"n":3}\n\n',
    status: 200,
    type: 'text/event-stream; charset=utf-8',
    buffer: 'undefined',
    process: 'undefined',
  });
});
