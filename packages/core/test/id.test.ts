/**
 * The strict id policy: printable ASCII, 0 to 128 characters, no space at either end. The same
 * rule guards ids on the way out (`isValidEventId`) and `Last-Event-ID` on the way back in
 * (`readLastEventId`, where the empty id also reads as absent).
 */
import { isValidEventId, MAX_EVENT_ID_LENGTH } from '@ssekit/core';
import { readLastEventId } from '@ssekit/core/adapter';

/** How Node hands over a header sent as raw UTF-8 bytes: each byte as one latin1 character. */
const asNodeDecodes = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

const ids: Array<{ name: string; id: string; valid: boolean }> = [
  { name: 'empty (clears the last id)', id: '', valid: true },
  { name: 'digits', id: '42', valid: true },
  { name: 'one character', id: 'a', valid: true },
  { name: 'every printable ASCII punctuation', id: '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', valid: true },
  { name: 'inner space', id: 'a b', valid: true },
  { name: 'uuid', id: '0d8f5c3e-6f1a-4c2b-9e7d-3a1b2c4d5e6f', valid: true },
  { name: '128 characters', id: 'i'.repeat(128), valid: true },
  { name: '129 characters', id: 'i'.repeat(129), valid: false },
  { name: '__proto__ is just text', id: '__proto__', valid: true },
  { name: 'constructor is just text', id: 'constructor', valid: true },
  { name: 'NaN is just text', id: 'NaN', valid: true },
  { name: '-1 is just text', id: '-1', valid: true },
  { name: 'leading space', id: ' a', valid: false },
  { name: 'trailing space', id: 'a ', valid: false },
  { name: 'only a space', id: ' ', valid: false },
  { name: 'leading tab', id: '\ta', valid: false },
  { name: 'trailing tab', id: 'a\t', valid: false },
  { name: 'inner tab', id: 'a\tb', valid: false },
  { name: 'LF', id: 'a\nb', valid: false },
  { name: 'CR', id: 'a\rb', valid: false },
  { name: 'CRLF', id: 'a\r\nb', valid: false },
  { name: 'NUL', id: 'a\0b', valid: false },
  { name: 'other control character', id: 'a\x1fb', valid: false },
  { name: 'DEL', id: 'a\x7fb', valid: false },
  { name: 'é as a JavaScript string', id: 'café', valid: false },
  { name: 'é as Node decodes its UTF-8 bytes', id: asNodeDecodes('café'), valid: false },
  { name: 'CJK as Node decodes its UTF-8 bytes', id: asNodeDecodes('日本'), valid: false },
  { name: 'emoji', id: '🎉', valid: false },
  { name: 'non-breaking space at the end', id: 'a\u00a0', valid: false },
];

describe('isValidEventId', () => {
  test('the limit is 128 characters', () => {
    expect(MAX_EVENT_ID_LENGTH).toBe(128);
  });

  test.each(ids)('$name → $valid', ({ id, valid }) => {
    expect(isValidEventId(id)).toBe(valid);
  });
});

describe('readLastEventId', () => {
  test.each([
    { name: 'a valid id', header: '42', expected: '42' },
    { name: '__proto__', header: '__proto__', expected: '__proto__' },
    { name: 'constructor', header: 'constructor', expected: 'constructor' },
    { name: 'NaN', header: 'NaN', expected: 'NaN' },
    { name: '-1', header: '-1', expected: '-1' },
    { name: 'inner space', header: 'a b', expected: 'a b' },
    { name: '128 characters', header: 'i'.repeat(128), expected: 'i'.repeat(128) },
    { name: '129 characters', header: 'i'.repeat(129), expected: undefined },
    { name: 'a very long header', header: '1'.repeat(100_000), expected: undefined },
    { name: 'absent', header: undefined, expected: undefined },
    { name: 'empty', header: '', expected: undefined },
    { name: 'an array of two', header: ['1', '2'], expected: undefined },
    { name: 'an array of one', header: ['1'], expected: undefined },
    { name: 'an empty array', header: [], expected: undefined },
    { name: 'leading space', header: ' 1', expected: undefined },
    { name: 'trailing space', header: '1 ', expected: undefined },
    { name: 'only spaces', header: '   ', expected: undefined },
    { name: 'leading tab', header: '\t1', expected: undefined },
    { name: 'trailing tab', header: '1\t', expected: undefined },
    { name: 'é as Node decodes its UTF-8 bytes', header: asNodeDecodes('café'), expected: undefined },
    { name: 'emoji as Node decodes its UTF-8 bytes', header: asNodeDecodes('🎉'), expected: undefined },
    { name: 'a latin1 byte', header: 'caf\xe9', expected: undefined },
    { name: 'NUL', header: '1\0', expected: undefined },
    { name: 'LF', header: '1\n2', expected: undefined },
  ])('$name', ({ header, expected }) => {
    expect(readLastEventId(header)).toBe(expected);
  });

  test.each([
    { name: 'number', header: 42 },
    { name: 'null', header: null },
    { name: 'object', header: { toString: () => '1' } },
  ])('a header of the wrong type at run time reads as absent: $name', ({ header }) => {
    expect(readLastEventId(header as unknown as string)).toBeUndefined();
  });

  // Both sides enforce one policy: whatever ssekit may write as an id comes back, and nothing else.
  test.each(ids.filter(({ id }) => id !== ''))('agrees with isValidEventId: $name', ({ id, valid }) => {
    expect(readLastEventId(id)).toBe(valid ? id : undefined);
  });
});
