/**
 * utf8Length counts what Node's Buffer.byteLength counts, for any string (lone surrogates
 * included), without Buffer, which other runtimes lack.
 */
import fc from 'fast-check';
import { utf8Length } from '../src/utf8.js';

test.each([
  ['', 0],
  ['plain', 5],
  ['é', 2],
  ['☃', 3],
  ['𝄞', 4],
  ['\ud834', 3], // a lone high surrogate is written as U+FFFD
  ['\udd1e', 3],
  ['\ud834x', 4],
  ['a\u0000b', 3],
])('%j is %i bytes', (text, bytes) => {
  expect(utf8Length(text)).toBe(bytes);
  expect(Buffer.byteLength(text)).toBe(bytes);
});

test('agrees with Buffer.byteLength on 20 000 random strings of any code units', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit)), maxLength: 64 }),
      (text) => {
        expect(utf8Length(text)).toBe(Buffer.byteLength(text));
      },
    ),
    { numRuns: 20_000 },
  );
});
