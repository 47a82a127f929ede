import { memo } from 'react';
import type { Attachment, Message } from '../api/types';
import { useI18n } from '../i18n';
import { Icon } from './icons';

export function mediaUrl(ws: string, a: Attachment): string {
  if (a.url) return a.url.startsWith('/') || /^https?:/.test(a.url) ? a.url : `/${a.url}`;
  return `/api/v1/workspaces/${ws}/attachments/${a.id}`;
}

export function mapUrl(lat: number, lon: number): string {
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=16/${lat}/${lon}`;
}

interface ContactCardData {
  name: string;
  phones: string[];
  emails: string[];
}

/** Reads the provider-neutral contacts content in its likely shapes (WhatsApp-like or flat). */
export function readContacts(content: unknown): ContactCardData[] {
  const arr = Array.isArray(content)
    ? content
    : content && typeof content === 'object' && Array.isArray((content as { contacts?: unknown }).contacts)
      ? (content as { contacts: unknown[] }).contacts
      : content && typeof content === 'object'
        ? [content]
        : [];
  return arr.map((raw) => {
    const c = (raw ?? {}) as Record<string, unknown>;
    const nameObj = c.name;
    const name =
      typeof nameObj === 'string'
        ? nameObj
        : nameObj && typeof nameObj === 'object'
          ? String((nameObj as Record<string, unknown>).formatted_name ?? (nameObj as Record<string, unknown>).first_name ?? '')
          : String(c.first_name ?? c.display_name ?? '');
    const list = (v: unknown, key: string): string[] =>
      Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? x : String((x as Record<string, unknown>)?.[key] ?? ''))).filter(Boolean) : typeof v === 'string' ? [v] : [];
    return {
      name,
      phones: [...list(c.phones, 'phone'), ...list(c.phone_number, 'phone'), ...list(c.phone, 'phone')],
      emails: list(c.emails, 'email'),
    };
  });
}

const quick = ['👍', '❤️', '😂', '😮', '🙏'];

export interface BubbleProps {
  msg: Message;
  ws: string;
  meId: string;
  isGroup: boolean;
  quoted: Message | undefined;
  showSender: boolean;
  onReply: (m: Message) => void;
  onReact: (m: Message, emoji: string, remove: boolean) => void;
  onRetry: (m: Message) => void;
  onJump: (id: string) => void;
  mentionNames: (ids: string[]) => string[];
}

function Ticks({ status }: { status: string }) {
  const { t } = useI18n();
  const glyph: Record<string, React.ReactNode> = { queued: <Icon name="clock" size={11} />, sent: '✓', delivered: '✓✓', read: '✓✓', failed: '!' };
  if (!glyph[status]) return null;
  const key = `thread.status.${status}` as const;
  return (
    <span className={`ticks ticks-${status}`} role="img" aria-label={t(key as 'thread.status.sent')} title={t(key as 'thread.status.sent')}>
      {glyph[status]}
    </span>
  );
}

function Body({ msg, ws }: { msg: Message; ws: string }) {
  const { t, fmtSize } = useI18n();
  const atts = msg.attachments ?? [];
  const parts = [];
  for (const a of atts) {
    const url = mediaUrl(ws, a);
    const kind = a.kind || msg.kind;
    if (kind === 'image' || (kind !== 'sticker' && a.mime_type?.startsWith('image/'))) {
      parts.push(
        <a key={a.id} href={url} target="_blank" rel="noreferrer" className="media">
          <img src={url} alt={a.filename || t('thread.document')} loading="lazy" width={a.width || undefined} height={a.height || undefined} />
        </a>,
      );
    } else if (kind === 'sticker') {
      parts.push(<img key={a.id} className="sticker" src={url} alt={t('thread.sticker')} loading="lazy" />);
    } else if (kind === 'video' || a.mime_type?.startsWith('video/')) {
      parts.push(<video key={a.id} className="media" src={url} controls preload="metadata" aria-label={a.filename || 'video'} />);
    } else if (kind === 'audio' || kind === 'voice' || a.mime_type?.startsWith('audio/')) {
      parts.push(<audio key={a.id} src={url} controls preload="none" aria-label={a.filename || kind} />);
    } else {
      parts.push(
        <a key={a.id} className="doc" href={url} download={a.filename || true} aria-label={t('thread.download', { name: a.filename || a.id })}>
          <span className="doc-icon"><Icon name="file" /></span>
          <span className="doc-name">{a.filename || t('thread.document')}</span>
          <span className="doc-size">{a.size ? fmtSize(a.size) : ''}</span>
        </a>,
      );
    }
  }
  if (msg.kind === 'location' && msg.location) {
    const l = msg.location;
    parts.push(
      <div key="loc" className="location">
        <Icon name="pin" size={14} /> <strong>{l.name || t('thread.location')}</strong>
        {l.address && <div>{l.address}</div>}
        <div className="coords">
          {l.latitude.toFixed(5)}, {l.longitude.toFixed(5)}
        </div>
        <a href={l.url || mapUrl(l.latitude, l.longitude)} target="_blank" rel="noreferrer">
          {t('thread.openMap')}
        </a>
      </div>,
    );
  }
  if (msg.kind === 'contacts') {
    for (const [i, c] of readContacts(msg.content).entries()) {
      parts.push(
        <div key={`c${i}`} className="contact-card" aria-label={t('thread.contactCard')}>
          <Icon name="user" size={14} /> <strong>{c.name || t('thread.contactCard')}</strong>
          {c.phones.map((p) => (
            <div key={p}>
              <a href={`tel:${p}`}>{p}</a>
            </div>
          ))}
          {c.emails.map((e) => (
            <div key={e}>
              <a href={`mailto:${e}`}>{e}</a>
            </div>
          ))}
        </div>,
      );
    }
  }
  if (msg.kind === 'template') {
    const name = String((msg.content as { name?: string } | undefined)?.name ?? '');
    parts.push(
      <div key="tpl" className="muted small">
        {t('thread.template', { name })}
      </div>,
    );
  }
  if (msg.kind === 'unsupported') {
    parts.push(
      <div key="unsup" className="unsupported">
        {t('thread.unsupported', { kind: String((msg.content as { type?: string } | undefined)?.type ?? msg.kind) })}
      </div>,
    );
  }
  if (msg.text) parts.push(<div key="text" className="text">{msg.text}</div>);
  return <>{parts}</>;
}

export const MessageBubble = memo(function MessageBubble(p: BubbleProps) {
  const { t, fmtTime, fmtDateTime } = useI18n();
  const { msg } = p;
  const out = msg.direction === 'outbound';
  const cls = ['bubble', out ? 'out' : 'in', msg.private ? 'note' : '', msg.status === 'failed' ? 'failed' : '', msg.deleted_at ? 'deleted' : '']
    .filter(Boolean)
    .join(' ');
  const reactions = new Map<string, { count: number; mine: boolean; names: string[] }>();
  for (const r of msg.reactions ?? []) {
    const e = reactions.get(r.emoji) ?? { count: 0, mine: false, names: [] };
    e.count++;
    e.names.push(r.by?.name ?? '');
    if (r.by?.type === 'agent' && r.by.id === p.meId) e.mine = true;
    reactions.set(r.emoji, e);
  }
  if (msg.sender?.type === 'system') {
    return (
      <div className="system-line" role="note">
        {msg.text} · <time dateTime={msg.created_at}>{fmtTime(msg.created_at)}</time>
      </div>
    );
  }
  return (
    <div className={`msg-row ${out ? 'out' : 'in'}`} id={`m-${msg.id}`}>
      <article className={cls} aria-label={msg.private ? t('thread.privateNote') : undefined}>
        {msg.private && (
          <div className="note-tag">
            <Icon name="lock" size={12} /> {t('thread.privateNote')}
          </div>
        )}
        {(p.showSender || msg.private || (out && msg.sender?.name)) && msg.sender?.name && (
          <div className="sender">{msg.sender.name}</div>
        )}
        {msg.reply_to_id && (
          <button type="button" className="quote" onClick={() => p.onJump(msg.reply_to_id as string)} aria-label={t('thread.quoted')}>
            <strong>{p.quoted?.sender?.name ?? ''}</strong>
            <span>{p.quoted ? p.quoted.text || p.quoted.kind : '…'}</span>
          </button>
        )}
        {msg.deleted_at ? <div className="text muted">{t('thread.deleted')}</div> : <Body msg={msg} ws={p.ws} />}
        {msg.private && (msg.mentions?.length ?? 0) > 0 && (
          <div className="mentions small">@ {p.mentionNames(msg.mentions ?? []).join(', ')}</div>
        )}
        <div className="meta">
          {msg.edited_at && (
            <span className="edited" title={msg.previous_text || undefined}>
              {t('thread.edited')}
            </span>
          )}
          <time dateTime={msg.created_at} title={fmtDateTime(msg.created_at)}>
            {fmtTime(msg.created_at)}
          </time>
          {out && !msg.private && <Ticks status={msg.status} />}
        </div>
        {msg.status === 'failed' && (
          <div className="fail" role="alert">
            <span>
              {t('thread.failed')}
              {msg.error ? `: ${msg.error}` : ''}
            </span>
            <button type="button" className="btn small" onClick={() => p.onRetry(msg)}>
              {t('thread.retry')}
            </button>
          </div>
        )}
        {reactions.size > 0 && (
          <div className="reactions">
            {[...reactions.entries()].map(([emoji, r]) => (
              <button
                key={emoji}
                type="button"
                className={`reaction${r.mine ? ' mine' : ''}`}
                title={r.names.join(', ')}
                aria-pressed={r.mine}
                aria-label={`${emoji} ${r.count}`}
                onClick={() => p.onReact(msg, emoji, r.mine)}
              >
                {emoji} {r.count > 1 ? r.count : ''}
              </button>
            ))}
          </div>
        )}
      </article>
      {!msg.deleted_at && (
        <div className="msg-tools">
          <button type="button" className="icon-btn" aria-label={t('thread.reply')} title={t('thread.reply')} onClick={() => p.onReply(msg)}>
            <Icon name="reply" size={16} />
          </button>
          {!msg.private &&
            quick.map((e) => (
              <button key={e} type="button" className="icon-btn" aria-label={`${t('thread.react')} ${e}`} onClick={() => p.onReact(msg, e, false)}>
                {e}
              </button>
            ))}
        </div>
      )}
    </div>
  );
});
