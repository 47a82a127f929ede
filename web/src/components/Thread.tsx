import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useQueryClient } from '@tanstack/react-query';
import type { Conversation, Message } from '../api/types';
import { api, wsPath } from '../api/client';
import { useMessages, useSendMessage } from '../api/hooks';
import { flattenMessages, upsertMessage, type MessagePages } from '../sync/messages';
import { messagesKey, useLive, useSync, useSyncState } from '../sync/SyncProvider';
import { typingUsers } from '../sync/live';
import { useI18n } from '../i18n';
import { MessageBubble } from './MessageBubble';
import { Composer } from './Composer';
import { Avatar } from './ui';

interface Props {
  conv: Conversation;
  composerRef: React.RefObject<HTMLTextAreaElement | null>;
}

export function Thread({ conv, composerRef }: Props) {
  const { t } = useI18n();
  const { ws, userId, send: sendFrame, markRead } = useSync();
  const qc = useQueryClient();
  const members = useSyncState((s) => s.members);
  const channel = useSyncState((s) => s.channels[conv.channel_id]);
  const live = useLive();
  const q = useMessages(conv.id);
  const items = useMemo(() => flattenMessages(q.data), [q.data]);
  const byId = useMemo(() => new Map(items.map((m) => [m.id, m])), [items]);
  const [replyTo, setReplyTo] = useState<Message | null>(null);
  const [showNew, setShowNew] = useState(false);
  const sendMut = useSendMessage(conv.id);

  const scrollRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const initialised = useRef(false);
  // the row the reader looks at while older history loads; `until` keeps it pinned for a moment
  // after the prepend, while the new rows get measured (estimates become real heights)
  const anchor = useRef<{ id: string; offset: number; count: number; until?: number } | null>(null);
  const lastId = useRef<string | undefined>(undefined);

  const virt = useVirtualizer({
    count: items.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => 72,
    getItemKey: (i) => items[i]?.id ?? i,
    overscan: 6,
    // render scroll updates in React's normal batch instead of a synchronous flush per scroll event
    useFlushSync: false,
  });

  const scrollToBottom = useCallback(() => {
    const el = scrollRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, []);

  // open at the newest message
  useLayoutEffect(() => {
    if (!initialised.current && items.length) {
      initialised.current = true;
      virt.scrollToIndex(items.length - 1, { align: 'end' });
      requestAnimationFrame(() => {
        scrollToBottom();
        requestAnimationFrame(scrollToBottom);
      });
    }
  }, [items.length, virt, scrollToBottom]);

  // the viewport shrinks (viewers bar, growing composer, on-screen keyboard): stay pinned to the bottom
  useEffect(() => {
    const el = scrollRef.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver(() => {
      if (atBottom.current && initialised.current) el.scrollTop = el.scrollHeight;
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const total = virt.getTotalSize();

  // older page arrived (and then its rows got measured): put the anchor row back where it was
  useLayoutEffect(() => {
    const a = anchor.current;
    const el = scrollRef.current;
    if (!a || !el) return;
    if (a.until && Date.now() > a.until) {
      anchor.current = null;
      return;
    }
    const idx = items.findIndex((m) => m.id === a.id);
    if (idx < 0) return;
    const start = virt.measurementsCache[idx]?.start;
    if (start === undefined) return;
    if (!a.until && items.length <= a.count) return; // the older page has not arrived yet
    el.scrollTop = start - a.offset;
    if (!a.until) a.until = Date.now() + 500;
  }, [items, virt, total]);

  // new messages at the end: follow only when the reader is at the bottom
  const newest = items[items.length - 1];
  useEffect(() => {
    if (!newest || newest.id === lastId.current) return;
    const first = lastId.current === undefined;
    lastId.current = newest.id;
    if (first) return;
    if (atBottom.current || newest.direction === 'outbound') {
      requestAnimationFrame(scrollToBottom);
      if (newest.direction === 'inbound' && document.visibilityState === 'visible') markRead(conv.id);
    } else {
      setShowNew(true);
    }
  }, [newest, scrollToBottom, markRead, conv.id]);

  // measured sizes change the total height: stay pinned to the bottom if we were there
  useLayoutEffect(() => {
    if (atBottom.current && initialised.current && !anchor.current) scrollToBottom();
  }, [total, scrollToBottom]);

  const loadOlder = useCallback(() => {
    const el = scrollRef.current;
    if (!el || !q.hasNextPage || q.isFetchingNextPage) return;
    // the first row at the top of the viewport, from the real scrollTop (the virtualizer's own
    // offset may lag one scroll event behind)
    const first = virt.measurementsCache.find((vi) => vi.end > el.scrollTop);
    const m = first ? items[first.index] : undefined;
    if (m && first && (!anchor.current || anchor.current.until)) anchor.current = { id: m.id, offset: first.start - el.scrollTop, count: items.length };
    void q.fetchNextPage();
  }, [q, virt, items]);

  // a first page shorter than the viewport cannot be scrolled: fetch older pages until it fills
  useEffect(() => {
    const el = scrollRef.current;
    if (el && initialised.current && q.hasNextPage && !q.isFetchingNextPage && el.scrollHeight <= el.clientHeight + 8) loadOlder();
  }, [total, q.hasNextPage, q.isFetchingNextPage, loadOlder]);

  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    // while an older page is on its way, keep the anchor's offset current so scrolling done
    // meanwhile is not undone when the page lands
    const a = anchor.current;
    if (a && !a.until && items.length <= a.count) {
      const idx = items.findIndex((m) => m.id === a.id);
      const start = idx >= 0 ? virt.measurementsCache[idx]?.start : undefined;
      if (start !== undefined) a.offset = start - el.scrollTop;
    }
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    if (atBottom.current && showNew) setShowNew(false);
    if (el.scrollTop < 300 && initialised.current) loadOlder();
  };

  const onReact = useCallback(
    async (m: Message, emoji: string, remove: boolean) => {
      const msg = await api<Message>(wsPath(ws, `/messages/${m.id}/reactions`), remove ? { method: 'DELETE' } : { body: { emoji } });
      if (msg?.id) qc.setQueryData<MessagePages>(messagesKey(ws, conv.id), (d) => upsertMessage(d, msg));
    },
    [ws, qc, conv.id],
  );
  const onRetry = useCallback(
    async (m: Message) => {
      const msg = await api<Message | undefined>(wsPath(ws, `/messages/${m.id}/retry`), { method: 'POST' });
      if (msg?.id) qc.setQueryData<MessagePages>(messagesKey(ws, conv.id), (d) => upsertMessage(d, msg));
    },
    [ws, qc, conv.id],
  );
  const onJump = useCallback(
    (id: string) => {
      const idx = items.findIndex((m) => m.id === id);
      if (idx >= 0) virt.scrollToIndex(idx, { align: 'center' });
    },
    [items, virt],
  );
  const onReply = useCallback(
    (m: Message) => {
      setReplyTo(m);
      composerRef.current?.focus();
    },
    [composerRef],
  );
  const mentionNames = useCallback((ids: string[]) => ids.map((id) => members[id]?.name ?? id), [members]);

  const typers = typingUsers(live, conv.id, userId).map((u) => members[u]?.name || '…');
  const viewers = (live.viewers[conv.id] ?? []).filter((u) => u !== userId);
  const collision = typers.length > 0 && viewers.length > 0;
  const memberList = useMemo(() => Object.values(members), [members]);

  return (
    <div className="thread">
      {viewers.length > 0 && (
        <div className={`viewers${collision ? ' collision' : ''}`} role="status">
          <span className="viewer-avatars">
            {viewers.map((v) => (
              <Avatar key={v} name={members[v]?.name || '?'} url={members[v]?.avatar_url} id={v} size={20} />
            ))}
          </span>
          {collision ? t('thread.collision', { name: typers.join(', ') }) : t('thread.viewing', { names: viewers.map((v) => members[v]?.name || '…').join(', ') })}
        </div>
      )}
      <div
        className="thread-scroll"
        onWheel={() => anchor.current?.until && (anchor.current = null)}
        onTouchMove={() => anchor.current?.until && (anchor.current = null)}
        data-count={items.length} data-first={items[0]?.id ?? ''} ref={scrollRef} onScroll={onScroll} role="log" aria-live="polite" aria-label={conv.contact?.name || conv.title}>
        {/* one fixed-height line: its text changes, its height never does, so nothing below moves */}
        <p className="thread-top muted center small" aria-live="polite">
          {q.isLoading ? t('common.loading') : q.isFetchingNextPage ? t('thread.loadingOlder') : !q.hasNextPage && q.isSuccess ? t('thread.start') : ''}
        </p>
        <div className="thread-items" style={{ height: total, position: 'relative' }}>
          {virt.getVirtualItems().map((vi) => {
            const m = items[vi.index] as Message;
            const prev = items[vi.index - 1];
            const showSender = conv.is_group && m.direction === 'inbound' && (!prev || prev.sender?.id !== m.sender?.id || prev.direction !== m.direction);
            return (
              <div
                key={vi.key}
                data-index={vi.index}
                ref={virt.measureElement}
                style={{ position: 'absolute', top: 0, left: 0, right: 0, transform: `translateY(${vi.start}px)` }}
              >
                <MessageBubble
                  msg={m}
                  ws={ws}
                  meId={userId}
                  isGroup={conv.is_group}
                  quoted={m.reply_to_id ? byId.get(m.reply_to_id) : undefined}
                  showSender={showSender}
                  onReply={onReply}
                  onReact={(mm, e, r) => void onReact(mm, e, r)}
                  onRetry={(mm) => void onRetry(mm)}
                  onJump={onJump}
                  mentionNames={mentionNames}
                />
              </div>
            );
          })}
        </div>
      </div>
      {showNew && (
        <button
          type="button"
          className="new-msgs"
          onClick={() => {
            setShowNew(false);
            scrollToBottom();
          }}
        >
          ↓ {t('thread.newMessages')}
        </button>
      )}
      <div className="typing" aria-live="polite">
        {typers.length > 0 && t('thread.typing', { name: typers.join(', ') })}
      </div>
      <Composer
        key={conv.id}
        ws={ws}
        conv={conv}
        channel={channel}
        members={memberList}
        replyTo={replyTo}
        onCancelReply={() => setReplyTo(null)}
        onSend={(body) => sendMut.mutateAsync(body)}
        onTyping={(on) => sendFrame({ type: 'typing', conversation_id: conv.id, state: on ? 'on' : 'off' })}
        textareaRef={composerRef}
      />
    </div>
  );
}
