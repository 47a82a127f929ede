import { describe, expect, it } from 'vitest';
import { en } from '../src/i18n/en';
import { ru } from '../src/i18n/ru';
import { makeFormatters, translate } from '../src/i18n';

describe('i18n', () => {
  it('every key exists in both languages, non-empty', () => {
    const ek = Object.keys(en).sort();
    const rk = Object.keys(ru).sort();
    expect(rk).toEqual(ek);
    for (const k of ek) {
      expect((en as Record<string, string>)[k], k).not.toBe('');
      expect((ru as Record<string, string>)[k], k).not.toBe('');
    }
  });

  it('placeholders match between languages', () => {
    const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort().join(',');
    for (const k of Object.keys(en) as (keyof typeof en)[]) {
      expect(ph(ru[k]), k).toBe(ph(en[k]));
    }
  });

  it('interpolates variables', () => {
    expect(translate('en', 'thread.typing', { name: 'Ann' })).toBe('Ann is typing…');
    expect(translate('ru', 'thread.typing', { name: 'Аня' })).toBe('Аня печатает…');
  });

  it('formats numbers and sizes per locale', () => {
    expect(makeFormatters('en').fmtNumber(12345)).toBe('12,345');
    expect(makeFormatters('ru').fmtNumber(12345).replace(/\s/g, ' ')).toBe('12 345');
    expect(makeFormatters('en').fmtSize(1536)).toBe('1.5 KB');
    expect(makeFormatters('ru').fmtSize(1536)).toBe('1,5 КБ');
  });
});
