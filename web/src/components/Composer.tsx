import { useCallback, useEffect, useMemo, useRef, useState, type ClipboardEvent, type DragEvent, type KeyboardEvent } from 'react';
import { api, wsPath } from '../api/client';
import type { Channel, Conversation, Member, Message, Upload } from '../api/types';
import { useI18n } from '../i18n';
import { loadDraft, saveDraft } from '../lib/drafts';
import { isSms, lengthLimit, mentionQuery, whatsappWindowClosed } from '../lib/rules';
import { smsSegments } from '../lib/sms';
import { Avatar } from './ui';
import { Icon } from './icons';

export interface SendBody {
  text?: string;
  attachment_ids?: string[];
  private?: boolean;
  reply_to_id?: string | null;
  template?: { name: string; language: string; params: string[] };
}

interface Pending {
  key: string;
  name: string;
  upload?: Upload;
  error?: string;
  previewUrl?: string;
}

export interface ComposerProps {
  ws: string;
  conv: Conversation;
  channel: Channel | undefined;
  members: Member[];
  replyTo: Message | null;
  onCancelReply: () => void;
  onSend: (body: SendBody) => Promise<unknown>;
  onTyping?: (on: boolean) => void;
  textareaRef?: React.RefObject<HTMLTextAreaElement | null>;
  uploadFile?: (f: File) => Promise<Upload>;
}

export function Composer(props: ComposerProps) {
  const { ws, conv, channel, members, replyTo, onCancelReply, onSend, onTyping, uploadFile } = props;
  const { t } = useI18n();
  const [text, setText] = useState(() => loadDraft(conv.id));
  const [note, setNote] = useState(false);
  const [files, setFiles] = useState<Pending[]>([]);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [drag, setDrag] = useState(false);
  const [caret, setCaret] = useState(0);
  const [mentionIdx, setMentionIdx] = useState(0);
  const [tpl, setTpl] = useState({ name: '', language: 'en', params: '' });
  const [recording, setRecording] = useState(false);
  const recorder = useRef<MediaRecorder | null>(null);
  const ownRef = useRef<HTMLTextAreaElement | null>(null);
  const taRef = props.textareaRef ?? ownRef;
  const fileInput = useRef<HTMLInputElement>(null);
  const typingOn = useRef(false);
  const typingSentAt = useRef(0);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  // per-conversation drafts: the parent keys this component by conversation id
  useEffect(() => {
    saveDraft(conv.id, text);
  }, [conv.id, text]);

  const stopTyping = useCallback(() => {
    if (typingTimer.current) clearTimeout(typingTimer.current);
    typingTimer.current = null;
    if (typingOn.current) {
      typingOn.current = false;
      onTyping?.(false);
    }
  }, [onTyping]);
  useEffect(() => stopTyping, [stopTyping]);

  const windowClosed = !note && whatsappWindowClosed(conv, channel);
  const limit = lengthLimit(channel?.kind ?? conv.channel_kind);
  const sms = !note && isSms(conv, channel) ? smsSegments(text) : null;
  const tooLong = !note && limit !== null && text.length > limit;

  const mention = note ? mentionQuery(text, caret) : null;
  const mentionList = useMemo(() => {
    if (!mention) return [];
    const q = mention.query.toLowerCase();
    const raw = text.slice(mention.start + 1, caret).toLowerCase();
    // a trailing space ends the mention unless a longer name continues it ("@Bob " → "Bob Stone")
    const ended = raw.endsWith(' ');
    return members
      .filter((m) => {
        const n = (m.name || m.email).toLowerCase();
        return ended ? n.startsWith(raw) : n.includes(q);
      })
      .slice(0, 6);
  }, [mention, members, text, caret]);

  const upload = useCallback(
    async (f: File) => {
      if (uploadFile) return uploadFile(f);
      const fd = new FormData();
      fd.append('file', f, f.name);
      return api<Upload>(wsPath(ws, '/uploads'), { body: fd });
    },
    [ws, uploadFile],
  );

  const addFiles = useCallback(
    (list: File[]) => {
      for (const f of list) {
        const key = `${Date.now()}-${Math.random()}`;
        const previewUrl = f.type.startsWith('audio/') ? URL.createObjectURL(f) : undefined;
        setFiles((fs) => [...fs, { key, name: f.name, previewUrl }]);
        upload(f).then(
          (u) => setFiles((fs) => fs.map((p) => (p.key === key ? { ...p, upload: u } : p))),
          (e: unknown) => setFiles((fs) => fs.map((p) => (p.key === key ? { ...p, error: e instanceof Error ? e.message : String(e) } : p))),
        );
      }
    },
    [upload],
  );

  const uploading = files.some((f) => !f.upload && !f.error);
  const canSend = !busy && !uploading && !tooLong && (windowClosed ? !!tpl.name.trim() : !!text.trim() || files.some((f) => f.upload));

  const send = async () => {
    if (!canSend) return;
    setBusy(true);
    setError('');
    const body: SendBody = windowClosed
      ? {
          template: {
            name: tpl.name.trim(),
            language: tpl.language.trim() || 'en',
            params: tpl.params.split('\n').map((s) => s.trim()).filter(Boolean),
          },
        }
      : {
          text: text.trim() ? text : undefined,
          attachment_ids: files.filter((f) => f.upload).map((f) => (f.upload as Upload).id),
          private: note,
        };
    if (replyTo) body.reply_to_id = replyTo.id;
    try {
      await onSend(body);
      stopTyping();
      if (!windowClosed) setText('');
      files.forEach((f) => f.previewUrl && URL.revokeObjectURL(f.previewUrl));
      setFiles([]);
      onCancelReply();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
      taRef.current?.focus();
    }
  };

  const insertMention = (m: Member) => {
    if (!mention) return;
    const name = m.name || m.email;
    const next = `${text.slice(0, mention.start)}@${name} ${text.slice(caret)}`;
    setText(next);
    const pos = mention.start + name.length + 2;
    setCaret(pos);
    requestAnimationFrame(() => taRef.current?.setSelectionRange(pos, pos));
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (mentionList.length) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        setMentionIdx((i) => (i + (e.key === 'ArrowDown' ? 1 : mentionList.length - 1)) % mentionList.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        insertMention(mentionList[Math.min(mentionIdx, mentionList.length - 1)] as Member);
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    } else if (e.key === 'Escape') {
      if (replyTo) onCancelReply();
      else taRef.current?.blur();
    }
  };

  const onChange = (v: string, pos: number) => {
    setText(v);
    setCaret(pos);
    setMentionIdx(0);
    if (!onTyping) return;
    // "on" is refreshed every few seconds while typing: the server times it out after ~6s
    if (v && (!typingOn.current || Date.now() - typingSentAt.current > 3000)) {
      typingOn.current = true;
      typingSentAt.current = Date.now();
      onTyping(true);
    }
    if (typingTimer.current) clearTimeout(typingTimer.current);
    typingTimer.current = setTimeout(stopTyping, 4000);
  };

  const onPaste = (e: ClipboardEvent) => {
    const list = Array.from(e.clipboardData.files);
    if (list.length) {
      e.preventDefault();
      addFiles(list);
    }
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDrag(false);
    addFiles(Array.from(e.dataTransfer.files));
  };

  const startRecording = async () => {
    setError('');
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const rec = new MediaRecorder(stream);
      const chunks: Blob[] = [];
      rec.ondataavailable = (ev) => ev.data.size && chunks.push(ev.data);
      rec.onstop = () => {
        stream.getTracks().forEach((tr) => tr.stop());
        const type = rec.mimeType || 'audio/webm';
        const ext = type.includes('ogg') ? 'ogg' : type.includes('mp4') ? 'm4a' : 'webm';
        addFiles([new File(chunks, `voice-${Date.now()}.${ext}`, { type })]);
      };
      recorder.current = rec;
      rec.start();
      setRecording(true);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  const stopRecording = () => {
    recorder.current?.stop();
    recorder.current = null;
    setRecording(false);
  };

  return (
    <div
      className={`composer${note ? ' note-mode' : ''}${drag ? ' drag' : ''}`}
      onDragOver={(e) => {
        if (e.dataTransfer.types.includes('Files')) {
          e.preventDefault();
          setDrag(true);
        }
      }}
      onDragLeave={() => setDrag(false)}
      onDrop={onDrop}
    >
      {drag && <div className="drop-hint">{t('composer.dropHere')}</div>}
      {replyTo && (
        <div className="reply-bar">
          <span>
            {t('thread.replyingTo', { name: replyTo.sender?.name || '' })}: <em>{(replyTo.text || replyTo.kind).slice(0, 120)}</em>
          </span>
          <button type="button" className="icon-btn" aria-label={t('composer.cancelReply')} onClick={onCancelReply}>
            <Icon name="close" size={14} />
          </button>
        </div>
      )}
      {windowClosed && (
        <div className="rule-box" role="note">
          <p>{t('composer.windowClosed')}</p>
          <div className="tpl-grid">
            <label className="field">
              <span>{t('composer.templateName')}</span>
              <input value={tpl.name} onChange={(e) => setTpl({ ...tpl, name: e.target.value })} />
            </label>
            <label className="field">
              <span>{t('composer.templateLanguage')}</span>
              <input value={tpl.language} onChange={(e) => setTpl({ ...tpl, language: e.target.value })} />
            </label>
            <label className="field wide">
              <span>{t('composer.templateParams')}</span>
              <textarea rows={2} value={tpl.params} onChange={(e) => setTpl({ ...tpl, params: e.target.value })} />
            </label>
          </div>
        </div>
      )}
      {files.length > 0 && (
        <ul className="chips" aria-label={t('composer.attach')}>
          {files.map((f) => (
            <li key={f.key} className={`chip${f.error ? ' chip-error' : ''}`}>
              {f.previewUrl && <audio src={f.previewUrl} controls aria-label={t('composer.voicePreview')} />}
              <span>{f.name}</span>
              {!f.upload && !f.error && <span className="muted small">{t('composer.uploading')}</span>}
              {f.error && <span className="small">{f.error}</span>}
              <button
                type="button"
                className="icon-btn"
                aria-label={t('composer.removeAttachment', { name: f.name })}
                onClick={() => setFiles((fs) => fs.filter((x) => x.key !== f.key))}
              >
                <Icon name="close" size={14} />
              </button>
            </li>
          ))}
        </ul>
      )}
      {mentionList.length > 0 && (
        <ul className="mentions-pop" role="listbox" aria-label={t('composer.mention', { name: '' })}>
          {mentionList.map((m, i) => (
            <li key={m.id} role="option" aria-selected={i === mentionIdx}>
              <button type="button" onMouseDown={(e) => e.preventDefault()} onClick={() => insertMention(m)} aria-label={t('composer.mention', { name: m.name || m.email })}>
                <Avatar name={m.name || m.email} url={m.avatar_url} id={m.id} size={20} /> {m.name || m.email}
              </button>
            </li>
          ))}
        </ul>
      )}
      {!windowClosed || note ? (
        <textarea
          ref={taRef}
          className="composer-input"
          aria-label={note ? t('composer.note') : t('composer.reply')}
          placeholder={note ? t('composer.notePlaceholder') : t('composer.placeholder')}
          rows={2}
          value={text}
          onChange={(e) => onChange(e.target.value, e.target.selectionStart)}
          onSelect={(e) => setCaret(e.currentTarget.selectionStart)}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
          onBlur={stopTyping}
        />
      ) : null}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="composer-bar">
        <label className={`toggle${note ? ' on' : ''}`}>
          <input type="checkbox" checked={note} onChange={(e) => setNote(e.target.checked)} />
          <Icon name="lock" size={14} />
          <span>{t('composer.note')}</span>
        </label>
        <button type="button" className="icon-btn" aria-label={t('composer.attach')} title={t('composer.attach')} onClick={() => fileInput.current?.click()}>
          <Icon name="clip" />
        </button>
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          aria-hidden="true"
          tabIndex={-1}
          onChange={(e) => {
            addFiles(Array.from(e.target.files ?? []));
            e.target.value = '';
          }}
        />
        {typeof MediaRecorder !== 'undefined' &&
          (recording ? (
            <button type="button" className="icon-btn rec" aria-label={t('composer.stopRecording')} title={t('composer.stopRecording')} onClick={stopRecording}>
              <Icon name="stop" />
            </button>
          ) : (
            <button type="button" className="icon-btn" aria-label={t('composer.record')} title={t('composer.record')} onClick={() => void startRecording()}>
              <Icon name="mic" />
            </button>
          ))}
        <span className="composer-info" aria-live="polite">
          {sms && text && t('composer.sms', { encoding: sms.encoding, units: sms.units, segments: sms.segments, remaining: sms.remaining })}
          {tooLong && <span className="error-inline"> {t('composer.tooLong', { length: text.length, max: limit ?? 0 })}</span>}
        </span>
        <button type="button" className="btn primary" disabled={!canSend} onClick={() => void send()}>
          {note ? t('composer.note') : t('composer.send')}
        </button>
      </div>
    </div>
  );
}
