import { describe, expect, it } from 'vitest';
import { smsSegments } from '../src/lib/sms';

describe('SMS segment counter', () => {
  it.each([
    ['', 'GSM-7', 0, 0],
    ['hello', 'GSM-7', 5, 1],
    ['a'.repeat(160), 'GSM-7', 160, 1],
    ['a'.repeat(161), 'GSM-7', 161, 2],
    ['a'.repeat(306), 'GSM-7', 306, 2],
    ['a'.repeat(307), 'GSM-7', 307, 3],
    ['€'.repeat(80), 'GSM-7', 160, 1], // extension chars cost two septets
    ['€'.repeat(81), 'GSM-7', 162, 2],
    ['привет', 'UCS-2', 6, 1],
    ['я'.repeat(70), 'UCS-2', 70, 1],
    ['я'.repeat(71), 'UCS-2', 71, 2],
    ['я'.repeat(134), 'UCS-2', 134, 2],
    ['я'.repeat(135), 'UCS-2', 135, 3],
    ['hi 😀', 'UCS-2', 5, 1], // emoji: a surrogate pair, two UTF-16 units
  ])('%j → %s %i units, %i segments', (text, enc, units, segments) => {
    const r = smsSegments(text);
    expect(r.encoding).toBe(enc);
    expect(r.units).toBe(units);
    expect(r.segments).toBe(segments);
  });

  it('never splits an escape pair across segments', () => {
    // 152 plain chars then a € (2 septets): the € moves to segment 2
    const r = smsSegments('a'.repeat(152) + '€' + 'a'.repeat(10));
    expect(r.segments).toBe(2);
    expect(r.remaining).toBe(153 - 12);
  });

  it('reports what is left in the current segment', () => {
    expect(smsSegments('abc').remaining).toBe(157);
    expect(smsSegments('я').remaining).toBe(69);
  });
});
