import { useEffect, useRef, type ReactNode } from 'react';

const palette = ['#1d4ed8', '#047857', '#b45309', '#7c3aed', '#be123c', '#0e7490', '#4d7c0f', '#a21caf'];

export function colorFor(id: string): string {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0;
  return palette[Math.abs(h) % palette.length] as string;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return '?';
  return ((parts[0]?.[0] ?? '') + (parts.length > 1 ? (parts[parts.length - 1]?.[0] ?? '') : '')).toUpperCase();
}

export function Avatar({ name, url, id, size = 32, title }: { name: string; url?: string; id: string; size?: number; title?: string }) {
  const style = { width: size, height: size, fontSize: Math.round(size * 0.4) };
  if (url) return <img className="avatar" src={url} alt={title ?? name} title={title ?? name} style={style} loading="lazy" />;
  return (
    <span className="avatar" role="img" aria-label={title ?? name} title={title ?? name} style={{ ...style, background: colorFor(id || name) }}>
      {initials(name)}
    </span>
  );
}

const kindGlyph: Record<string, string> = {
  whatsapp: 'WA',
  telegram: 'TG',
  twilio_sms: 'SMS',
  sms: 'SMS',
  messenger: 'FB',
  instagram: 'IG',
  email: '@',
  webchat: 'WEB',
  wappi: 'WP',
  api: 'API',
  max: 'MAX',
};

export function ChannelIcon({ kind, network }: { kind: string; network?: string }) {
  const k = kind === 'wappi' && network ? network : kind;
  return (
    <span className={`chan chan-${k}`} role="img" aria-label={k} title={k}>
      {kindGlyph[k] ?? k.slice(0, 3).toUpperCase()}
    </span>
  );
}

export function LabelPill({ name, color }: { name: string; color?: string }) {
  return (
    <span className="label-pill" style={{ borderColor: color || '#64748b' }}>
      <span className="dot" style={{ background: color || '#64748b' }} aria-hidden="true" />
      {name}
    </span>
  );
}

export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  });
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    ref.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && close.current();
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
      prev?.focus?.();
    };
  }, []);
  return (
    <div className="modal-back" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div
        className={`modal${wide ? ' wide' : ''}`}
        role="dialog"
        aria-modal="true"
        aria-label={title}
        tabIndex={-1}
        ref={ref}
      >
        <header className="modal-head">
          <h2>{title}</h2>
          <button type="button" className="icon-btn" aria-label="Close" onClick={onClose}>
            <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={2} aria-hidden="true">
              <path d="M18 6L6 18M6 6l12 12" />
            </svg>
          </button>
        </header>
        <div className="modal-body">{children}</div>
      </div>
    </div>
  );
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error instanceof Error ? error.message : String(error)}
    </p>
  );
}
