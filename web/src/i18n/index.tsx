import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import { en, type MessageKey } from './en';
import { ru } from './ru';

export type Lang = 'en' | 'ru';
export const LANGS: Lang[] = ['en', 'ru'];
export const dictionaries: Record<Lang, Record<MessageKey, string>> = { en, ru };

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

export function translate(lang: Lang, key: MessageKey, vars?: Record<string, string | number>): string {
  let s: string = dictionaries[lang][key] ?? en[key] ?? key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  }
  return s;
}

interface I18n {
  lang: Lang;
  setLang: (l: Lang) => void;
  t: Translate;
  fmtTime: (iso: string | null | undefined) => string;
  fmtDateTime: (iso: string | null | undefined) => string;
  fmtShort: (iso: string | null | undefined) => string;
  fmtNumber: (n: number) => string;
  fmtSize: (bytes: number) => string;
}

const Ctx = createContext<I18n | null>(null);

function initialLang(): Lang {
  try {
    const saved = localStorage.getItem('parley.lang');
    if (saved === 'en' || saved === 'ru') return saved;
  } catch {
    /* storage unavailable */
  }
  return typeof navigator !== 'undefined' && navigator.language?.toLowerCase().startsWith('ru') ? 'ru' : 'en';
}

export function makeFormatters(lang: Lang) {
  const locale = lang === 'ru' ? 'ru-RU' : 'en-US';
  const time = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' });
  const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' });
  const day = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short' });
  const num = new Intl.NumberFormat(locale);
  const parse = (iso: string | null | undefined) => {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  };
  return {
    fmtTime: (iso: string | null | undefined) => {
      const d = parse(iso);
      return d ? time.format(d) : '';
    },
    fmtDateTime: (iso: string | null | undefined) => {
      const d = parse(iso);
      return d ? dateTime.format(d) : '';
    },
    fmtShort: (iso: string | null | undefined) => {
      const d = parse(iso);
      if (!d) return '';
      const now = new Date();
      return d.toDateString() === now.toDateString() ? time.format(d) : day.format(d);
    },
    fmtNumber: (n: number) => num.format(n),
    fmtSize: (bytes: number) => {
      const units = lang === 'ru' ? ['Б', 'КБ', 'МБ', 'ГБ'] : ['B', 'KB', 'MB', 'GB'];
      let v = bytes;
      let i = 0;
      while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
      }
      return `${new Intl.NumberFormat(locale, { maximumFractionDigits: i ? 1 : 0 }).format(v)} ${units[i]}`;
    },
  };
}

export function I18nProvider({ children, lang: forced }: { children: ReactNode; lang?: Lang }) {
  const [lang, setLangState] = useState<Lang>(forced ?? initialLang);
  const setLang = useCallback((l: Lang) => {
    setLangState(l);
    try {
      localStorage.setItem('parley.lang', l);
    } catch {
      /* ignore */
    }
    document.documentElement.lang = l;
  }, []);
  const value = useMemo<I18n>(() => {
    const f = makeFormatters(lang);
    return { lang, setLang, t: (k, v) => translate(lang, k, v), ...f };
  }, [lang, setLang]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(Ctx);
  if (!v) throw new Error('useI18n outside I18nProvider');
  return v;
}
