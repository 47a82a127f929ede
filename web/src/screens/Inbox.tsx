import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useNavigate, useParams, useSearchParams } from 'react-router';
import { Queue, searchStr } from '../components/Queue';
import { Thread } from '../components/Thread';
import { DetailsPanel } from '../components/DetailsPanel';
import { ConversationActions } from '../components/ConversationActions';
import { Avatar, ChannelIcon } from '../components/ui';
import { Icon } from '../components/icons';
import { useConversation, useConversationMutation } from '../api/hooks';
import { isView, type QueueFilters, type View } from '../sync/queue';
import { useSync, useSyncState } from '../sync/SyncProvider';
import { useI18n } from '../i18n';

function isTyping(el: EventTarget | null): boolean {
  const e = el as HTMLElement | null;
  if (!e) return false;
  return e.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.tagName);
}

export function Inbox() {
  const { t } = useI18n();
  const { ws = '', view: viewParam, convId } = useParams();
  const [sp] = useSearchParams();
  const navigate = useNavigate();
  const view: View = isView(viewParam) ? viewParam : 'mine';
  const filters = useMemo<QueueFilters>(
    () => ({
      channel: sp.get('channel') || undefined,
      label: sp.get('label') || undefined,
      assignee: sp.get('assignee') || undefined,
      team: sp.get('team') || undefined,
      q: sp.get('q') || undefined,
    }),
    [sp],
  );
  const showDetails = sp.get('details') === '1';
  const basePath = `/w/${ws}/inbox/${view}`;
  const search = searchStr(filters);
  const { setOpenConversation, markRead, onRemoved } = useSync();
  const liveConv = useSyncState((s) => (convId ? s.conversations[convId] : undefined));
  const removed = useSyncState((s) => (convId ? !!s.tombstones[convId] : false));
  const fetched = useConversation(convId && !liveConv ? convId : undefined);
  const conv = liveConv ?? fetched.data;
  const channels = useSyncState((s) => s.channels);
  const searchRef = useRef<HTMLInputElement>(null);
  const composerRef = useRef<HTMLTextAreaElement>(null);
  const [ids, setIds] = useState<string[]>([]);
  const [focus, setFocus] = useState(-1);
  const mut = useConversationMutation();

  const onFilters = useCallback(
    (f: QueueFilters) => navigate(`${basePath}${convId ? `/${convId}` : ''}${searchStr(f)}`, { replace: true }),
    [navigate, basePath, convId],
  );

  // tell the server (viewers) and the reducer (unread) which thread is open
  useEffect(() => {
    setOpenConversation(convId ?? null);
    return () => setOpenConversation(null);
  }, [convId, setOpenConversation]);

  const unread = conv?.unread_count ?? 0;
  useEffect(() => {
    if (convId && unread > 0) markRead(convId);
  }, [convId, unread, markRead]);

  // a tombstone for the open conversation clears the stale selection
  useEffect(
    () =>
      onRemoved((gone) => {
        if (convId && gone.includes(convId)) navigate(`${basePath}${search}`, { replace: true });
      }),
    [onRemoved, convId, navigate, basePath, search],
  );
  useEffect(() => {
    if (removed) navigate(`${basePath}${search}`, { replace: true });
  }, [removed, navigate, basePath, search]);

  const open = useCallback((id: string) => navigate(`${basePath}/${id}${search}`), [navigate, basePath, search]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.metaKey || e.ctrlKey || e.altKey || isTyping(e.target)) return;
      const cur = focus >= 0 ? focus : convId ? ids.indexOf(convId) : -1;
      switch (e.key) {
        case 'j':
          e.preventDefault();
          setFocus(Math.min(ids.length - 1, cur + 1));
          break;
        case 'k':
          e.preventDefault();
          setFocus(Math.max(0, cur - 1));
          break;
        case 'Enter':
          if (focus >= 0 && ids[focus] && (e.target as HTMLElement).tagName !== 'A' && (e.target as HTMLElement).tagName !== 'BUTTON') {
            e.preventDefault();
            open(ids[focus] as string);
          }
          break;
        case 'r':
          if (convId) {
            e.preventDefault();
            composerRef.current?.focus();
          }
          break;
        case 'e':
          if (conv && conv.status !== 'resolved') {
            e.preventDefault();
            mut.mutate({ id: conv.id, body: { status: 'resolved' } });
          }
          break;
        case '/':
          e.preventDefault();
          searchRef.current?.focus();
          break;
        default:
          break;
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [focus, ids, convId, conv, open, mut]);

  const pane = !convId ? 'list' : showDetails ? 'details' : 'thread';
  const withDetails = (on: boolean) => {
    const p = new URLSearchParams(sp);
    if (on) p.set('details', '1');
    else p.delete('details');
    const s = p.toString();
    navigate(`${basePath}/${convId}${s ? `?${s}` : ''}`);
  };
  const title = conv ? (conv.is_group ? conv.title || conv.contact?.name : conv.contact?.name || conv.title) : '';
  return (
    <div className={`inbox pane-${pane}${showDetails ? ' with-details' : ''}`} aria-keyshortcuts="j k Enter r e /">
      <Queue
        view={view}
        filters={filters}
        selectedId={convId}
        basePath={basePath}
        search={search}
        focusIndex={focus}
        onItems={setIds}
        onFilters={onFilters}
        searchRef={searchRef}
      />
      <section className="thread-pane" aria-label={title || t('queue.selectHint')}>
        {!convId && <div className="empty-pane muted">{t('queue.selectHint')}</div>}
        {convId && !conv && <div className="empty-pane muted">{fetched.isError ? t('common.error') : t('common.loading')}</div>}
        {conv && (
          <>
            <header className="pane-head thread-head">
              <button type="button" className="icon-btn only-narrow" aria-label={t('common.back')} onClick={() => navigate(`${basePath}${search}`)}>
                <Icon name="back" />
              </button>
              <Avatar name={title || '?'} url={conv.contact?.avatar_url} id={conv.contact?.id || conv.id} size={32} />
              <div className="thread-title">
                <h2>
                  {conv.is_group && (
                    <span className="group-mark">
                      <Icon name="group" size={16} label={t('queue.group')} />{' '}
                    </span>
                  )}
                  {title || `#${conv.number}`}
                </h2>
                <div className="muted small">
                  <ChannelIcon kind={conv.channel_kind} network={String(channels[conv.channel_id]?.config?.network ?? '')} />{' '}
                  {channels[conv.channel_id]?.name} · #{conv.number} ·{' '}
                  <span className={`status status-${conv.status}`}>{t(`status.${conv.status}` as 'status.open')}</span>
                </div>
              </div>
              <button
                type="button"
                className="btn small"
                aria-label={t('thread.details')}
                aria-pressed={showDetails}
                onClick={() => withDetails(!showDetails)}
              >
                <Icon name="info" size={14} /> <span className="hide-narrow">{t('thread.details')}</span>
              </button>
            </header>
            <ConversationActions conv={conv} onMarkedUnread={() => navigate(`${basePath}${search}`)} />
            <Thread key={conv.id} conv={conv} composerRef={composerRef} />
          </>
        )}
      </section>
      {conv && showDetails && <DetailsPanel conv={conv} onBack={() => withDetails(false)} />}
    </div>
  );
}
