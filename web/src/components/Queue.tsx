import { memo, useEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { Link } from 'react-router';
import type { Conversation, Label, Member } from '../api/types';
import { useConversationList, useViewCounts } from '../api/hooks';
import { buildQueue, freezeOrder, VIEWS, type QueueFilters, type View } from '../sync/queue';
import { useSync, useSyncState } from '../sync/SyncProvider';
import { useI18n } from '../i18n';
import { Avatar, ChannelIcon, LabelPill } from './ui';
import { Icon } from './icons';

export interface QueueRowProps {
  conv: Conversation;
  href: string;
  selected: boolean;
  focused: boolean;
  labels: Record<string, Label>;
  assignee: Member | undefined;
  meId: string;
  network?: string;
}

export const QueueRow = memo(function QueueRow({ conv, href, selected, focused, labels, assignee, meId, network }: QueueRowProps) {
  const { t, fmtShort, fmtNumber } = useI18n();
  const name = conv.is_group ? conv.title || conv.contact?.name : conv.contact?.name || conv.title;
  const unread = conv.unread_count > 0;
  return (
    <Link
      to={href}
      className={`qrow${selected ? ' selected' : ''}${focused ? ' focused' : ''}${unread ? ' unread' : ''}`}
      aria-current={selected ? 'true' : undefined}
      data-conversation-id={conv.id}
      aria-label={`${name || '#' + conv.number}${unread ? ', ' + t('queue.unread', { count: conv.unread_count }) : ''}`}
    >
      <div className="qrow-avatar">
        <Avatar name={name || '?'} url={conv.contact?.avatar_url} id={conv.contact?.id || conv.id} size={36} />
        <ChannelIcon kind={conv.channel_kind} network={network} />
      </div>
      <div className="qrow-main">
        <div className="qrow-top">
          <span className="qrow-name">
            {conv.is_group && (
              <span className="group-mark" title={t('queue.group')}>
                <Icon name="group" size={14} label={t('queue.group')} />
              </span>
            )}
            {name || `#${conv.number}`}
          </span>
          <time className="qrow-time" dateTime={conv.last_message?.at ?? conv.updated_at}>
            {fmtShort(conv.last_message?.at ?? conv.updated_at)}
          </time>
        </div>
        <div className="qrow-bottom">
          <span className="qrow-preview">
            {conv.last_message?.direction === 'outbound' && <span aria-hidden="true">↩ </span>}
            {conv.last_message?.preview ?? ''}
          </span>
          {unread && (
            <span className="badge" aria-hidden="true">
              {fmtNumber(conv.unread_count)}
            </span>
          )}
          {assignee && (
            <Avatar
              name={assignee.name || assignee.email}
              url={assignee.avatar_url}
              id={assignee.id}
              size={18}
              title={t('queue.assignedTo', { name: assignee.id === meId ? t('queue.you') : assignee.name })}
            />
          )}
        </div>
        {(conv.labels?.length ?? 0) > 0 && (
          <div className="qrow-labels">
            {(conv.labels ?? []).map((id) => labels[id] && <LabelPill key={id} name={labels[id].name} color={labels[id].color} />)}
          </div>
        )}
      </div>
    </Link>
  );
});

interface QueueProps {
  view: View;
  filters: QueueFilters;
  selectedId?: string;
  basePath: string;
  search: string;
  focusIndex: number;
  onItems: (ids: string[]) => void;
  onFilters: (f: QueueFilters) => void;
  searchRef: React.RefObject<HTMLInputElement | null>;
}

export function Queue({ view, filters, selectedId, basePath, search, focusIndex, onItems, onFilters, searchRef }: QueueProps) {
  const { t, fmtNumber } = useI18n();
  const { userId } = useSync();
  const list = useConversationList(view, filters);
  const counts = useViewCounts();
  const live = useSyncState((s) => s.conversations);
  const tombstones = useSyncState((s) => s.tombstones);
  const labels = useSyncState((s) => s.labels);
  const members = useSyncState((s) => s.members);
  const channels = useSyncState((s) => s.channels);
  const teams = useSyncState((s) => s.teams);
  const [q, setQ] = useState(filters.q ?? '');
  const [hover, setHover] = useState(false);
  const frozenOrder = useRef<string[]>([]);

  useEffect(() => {
    const h = setTimeout(() => {
      if ((filters.q ?? '') !== q) onFilters({ ...filters, q: q || undefined });
    }, 250);
    return () => clearTimeout(h);
  }, [q, filters, onFilters]);

  const serverItems = useMemo(() => (list.data?.pages ?? []).flatMap((p) => p.items ?? []), [list.data]);
  const computed = useMemo(
    () => buildQueue(serverItems, live, tombstones, view, filters, userId),
    [serverItems, live, tombstones, view, filters, userId],
  );
  // While the pointer is over the list, keep rows where they are; reorder when it leaves.
  const { items, pending } = useMemo(() => {
    if (hover && frozenOrder.current.length) return freezeOrder(computed, frozenOrder.current);
    return { items: computed, pending: 0 };
  }, [computed, hover]);
  useEffect(() => {
    if (!hover) frozenOrder.current = computed.map((c) => c.id);
  }, [computed, hover]);

  const ids = useMemo(() => items.map((c) => c.id), [items]);
  useEffect(() => onItems(ids), [ids, onItems]);

  const scrollRef = useRef<HTMLDivElement>(null);
  const virt = useVirtualizer({
    count: items.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => 68,
    getItemKey: (i) => items[i]?.id ?? i,
    overscan: 8,
  });

  useEffect(() => {
    if (focusIndex >= 0) virt.scrollToIndex(focusIndex, { align: 'auto' });
  }, [focusIndex, virt]);

  const vitems = virt.getVirtualItems();
  const last = vitems[vitems.length - 1];
  useEffect(() => {
    if (last && last.index >= items.length - 5 && list.hasNextPage && !list.isFetchingNextPage) void list.fetchNextPage();
  }, [last, items.length, list]);

  const viewHref = (base: string, v: View) => `${base.replace(/\/inbox\/[^/]+$/, '')}/inbox/${v}${searchStr(filters)}`;
  return (
    <section className="queue" aria-label={t('nav.messages')}>
      <header className="queue-head">
        <h1 className="queue-title">{t('nav.messages')}</h1>
        <input
          ref={searchRef}
          className="search"
          type="search"
          aria-label={t('queue.search')}
          placeholder={`${t('queue.search')} (/)`}
          value={q}
          onChange={(e) => setQ(e.target.value)}
        />
        <nav className="views" aria-label={t('queue.filters')}>
          {VIEWS.map((v) => (
            <Link key={v} to={viewHref(basePath, v)} className={`view-tab${v === view ? ' active' : ''}`} aria-current={v === view ? 'page' : undefined}>
              {t(`view.${v}`)}
              {counts.data?.[v] != null && <span className="count">{fmtNumber(counts.data[v] as number)}</span>}
            </Link>
          ))}
        </nav>
        <div className="filters">
          <select aria-label={t('queue.allChannels')} value={filters.channel ?? ''} onChange={(e) => onFilters({ ...filters, channel: e.target.value || undefined })}>
            <option value="">{t('queue.allChannels')}</option>
            {Object.values(channels).map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
          <select aria-label={t('queue.allLabels')} value={filters.label ?? ''} onChange={(e) => onFilters({ ...filters, label: e.target.value || undefined })}>
            <option value="">{t('queue.allLabels')}</option>
            {Object.values(labels).map((l) => (
              <option key={l.id} value={l.id}>
                {l.name}
              </option>
            ))}
          </select>
          <select aria-label={t('queue.anyAssignee')} value={filters.assignee ?? ''} onChange={(e) => onFilters({ ...filters, assignee: e.target.value || undefined })}>
            <option value="">{t('queue.anyAssignee')}</option>
            {Object.values(members).map((m) => (
              <option key={m.id} value={m.id}>
                {m.name || m.email}
              </option>
            ))}
          </select>
          <select aria-label={t('queue.anyTeam')} value={filters.team ?? ''} onChange={(e) => onFilters({ ...filters, team: e.target.value || undefined })}>
            <option value="">{t('queue.anyTeam')}</option>
            {Object.values(teams).map((tm) => (
              <option key={tm.id} value={tm.id}>
                {tm.name}
              </option>
            ))}
          </select>
        </div>
      </header>
      <p className="kbd-hint">{t('kbd.title')}</p>
      <div className="queue-body">
        {pending > 0 && (
          <button type="button" className="new-activity" onClick={() => setHover(false)}>
            {t('queue.newActivity', { count: pending })}
          </button>
        )}
      <div
        className="queue-scroll"
        ref={scrollRef}
        onMouseEnter={() => setHover(true)}
        onMouseLeave={() => setHover(false)}
        role="list"
      >
        {list.isLoading && !items.length && <p className="muted pad">{t('common.loading')}</p>}
        {!list.isLoading && !items.length && <p className="muted pad">{t('queue.empty')}</p>}
        <div style={{ height: virt.getTotalSize(), position: 'relative' }}>
          {vitems.map((vi) => {
            const c = items[vi.index] as Conversation;
            return (
              <div
                key={vi.key}
                role="listitem"
                data-index={vi.index}
                ref={virt.measureElement}
                style={{ position: 'absolute', top: 0, left: 0, right: 0, transform: `translateY(${vi.start}px)` }}
              >
                <QueueRow
                  conv={c}
                  href={`${basePath}/${c.id}${search}`}
                  selected={c.id === selectedId}
                  focused={vi.index === focusIndex}
                  labels={labels}
                  assignee={c.assignee_id ? members[c.assignee_id] : undefined}
                  meId={userId}
                  network={String(channels[c.channel_id]?.config?.network ?? '')}
                />
              </div>
            );
          })}
        </div>
      </div>
      </div>
    </section>
  );
}

export function searchStr(f: QueueFilters): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) sp.set(k, String(v));
  const s = sp.toString();
  return s ? `?${s}` : '';
}
