import { useState } from 'react';
import type { Conversation } from '../api/types';
import { useConversationMutation } from '../api/hooks';
import { useSync, useSyncState } from '../sync/SyncProvider';
import { useI18n } from '../i18n';
import { ErrorText, LabelPill } from './ui';
import { Icon } from './icons';

export function ConversationActions({ conv, onResolved, onMarkedUnread }: { conv: Conversation; onResolved?: () => void; onMarkedUnread?: () => void }) {
  const { t } = useI18n();
  const { userId } = useSync();
  const members = useSyncState((s) => s.members);
  const teams = useSyncState((s) => s.teams);
  const labels = useSyncState((s) => s.labels);
  const mut = useConversationMutation();
  const [open, setOpen] = useState<'labels' | 'snooze' | null>(null);
  const [snooze, setSnooze] = useState('');
  const patch = (body: Record<string, unknown>) => mut.mutate({ id: conv.id, body });
  const closed = conv.status === 'resolved';
  const convLabels = conv.labels ?? [];

  return (
    <div className="actions" role="toolbar" aria-label={t('actions.more')}>
      {!conv.assignee_id && (
        <button type="button" className="btn small" onClick={() => patch({ assignee_id: userId })}>
          {t('actions.claim')}
        </button>
      )}
      <select
        aria-label={t('actions.assign')}
        className="small-select"
        value={conv.assignee_id ?? ''}
        onChange={(e) => patch({ assignee_id: e.target.value || null })}
      >
        <option value="">{t('actions.unassigned')}</option>
        {Object.values(members).map((m) => (
          <option key={m.id} value={m.id}>
            {m.id === userId ? `${m.name || m.email} (${t('queue.you')})` : m.name || m.email}
          </option>
        ))}
      </select>
      <select aria-label={t('actions.team')} className="small-select" value={conv.team_id ?? ''} onChange={(e) => patch({ team_id: e.target.value || null })}>
        <option value="">{t('actions.noTeam')}</option>
        {Object.values(teams).map((tm) => (
          <option key={tm.id} value={tm.id}>
            {tm.name}
          </option>
        ))}
      </select>
      {closed || conv.status === 'spam' || conv.status === 'snoozed' ? (
        <button type="button" className="btn small" onClick={() => patch({ status: 'open', snoozed_until: null })}>
          {conv.status === 'spam' ? t('actions.notSpam') : t('actions.reopen')}
        </button>
      ) : (
        <button
          type="button"
          className="btn small primary"
          aria-keyshortcuts="e"
          onClick={() => {
            patch({ status: 'resolved' });
            onResolved?.();
          }}
        >
          <Icon name="check" size={14} /> {t('actions.resolve')}
        </button>
      )}
      <div className="popover-wrap">
        <button type="button" className="btn small" aria-expanded={open === 'labels'} onClick={() => setOpen(open === 'labels' ? null : 'labels')}>
          <Icon name="tag" size={14} /> {t('actions.labels')}
        </button>
        {open === 'labels' && (
          <div className="popover" role="group" aria-label={t('actions.labels')}>
            {Object.values(labels).length === 0 && <p className="muted small">{t('common.none')}</p>}
            {Object.values(labels).map((l) => {
              const on = convLabels.includes(l.id);
              return (
                <label key={l.id} className="check-row">
                  <input
                    type="checkbox"
                    checked={on}
                    onChange={() =>
                      on
                        ? mut.mutate({ id: conv.id, path: `/labels/${l.id}`, method: 'DELETE' })
                        : mut.mutate({ id: conv.id, path: '/labels', method: 'POST', body: { label_ids: [l.id] } })
                    }
                  />
                  <LabelPill name={l.name} color={l.color} />
                </label>
              );
            })}
          </div>
        )}
      </div>
      <div className="popover-wrap">
        <button type="button" className="btn small" aria-expanded={open === 'snooze'} onClick={() => setOpen(open === 'snooze' ? null : 'snooze')}>
          <Icon name="clock" size={14} /> {t('actions.snooze')}
        </button>
        {open === 'snooze' && (
          <div className="popover">
            <label className="field">
              <span>{t('actions.snoozeUntil')}</span>
              <input type="datetime-local" value={snooze} onChange={(e) => setSnooze(e.target.value)} />
            </label>
            <button
              type="button"
              className="btn small primary"
              disabled={!snooze}
              onClick={() => {
                patch({ status: 'snoozed', snoozed_until: new Date(snooze).toISOString() });
                setOpen(null);
              }}
            >
              {t('actions.snooze')}
            </button>
          </div>
        )}
      </div>
      {conv.status !== 'spam' && (
        <button type="button" className="btn small" onClick={() => patch({ status: 'spam' })}>
          {t('actions.spam')}
        </button>
      )}
      <button
        type="button"
        className="btn small"
        onClick={() => {
          // leave the thread: staying would mark it read again at once
          mut.mutate({ id: conv.id, path: '/unread', method: 'POST' }, { onSuccess: () => onMarkedUnread?.() });
        }}
      >
        {t('actions.unread')}
      </button>
      {mut.error && <ErrorText error={mut.error} />}
    </div>
  );
}
