import { Link } from 'react-router';
import type { Conversation } from '../api/types';
import { useContact, useContactConversations, useParticipants } from '../api/hooks';
import { useSync, useSyncState } from '../sync/SyncProvider';
import { useI18n } from '../i18n';
import { Avatar, ChannelIcon } from './ui';
import { Icon } from './icons';

export function ContactProperties({ contactId }: { contactId: string }) {
  const { t } = useI18n();
  const c = useContact(contactId);
  const channels = useSyncState((s) => s.channels);
  if (!c.data) return <p className="muted">{c.isError ? t('common.error') : t('common.loading')}</p>;
  const d = c.data;
  const attrs = Object.entries(d.attributes ?? {});
  return (
    <dl className="props">
      {(d.phones?.length ?? 0) > 0 && (
        <>
          <dt>{t('details.phones')}</dt>
          {d.phones?.map((p) => (
            <dd key={p}>
              <a href={`tel:${p}`}>{p}</a>
            </dd>
          ))}
        </>
      )}
      {(d.emails?.length ?? 0) > 0 && (
        <>
          <dt>{t('details.emails')}</dt>
          {d.emails?.map((e) => (
            <dd key={e}>
              <a href={`mailto:${e}`}>{e}</a>
            </dd>
          ))}
        </>
      )}
      {(d.identities?.length ?? 0) > 0 && (
        <>
          <dt>{t('details.identities')}</dt>
          {d.identities?.map((i) => (
            <dd key={`${i.channel_id}:${i.identifier}`} className="ident">
              <ChannelIcon kind={i.channel_kind} network={String(channels[i.channel_id]?.config?.network ?? '')} />
              <span>{channels[i.channel_id]?.name ?? i.channel_kind}</span>
              <code>{i.identifier}</code>
            </dd>
          ))}
        </>
      )}
      {(d.tags?.length ?? 0) > 0 && (
        <>
          <dt>{t('details.tags')}</dt>
          <dd>
            {d.tags?.map((tag) => (
              <span key={tag} className="tag">
                {tag}
              </span>
            ))}
          </dd>
        </>
      )}
      {attrs.length > 0 && (
        <>
          <dt>{t('details.attributes')}</dt>
          {attrs.map(([k, v]) => (
            <dd key={k}>
              <span className="muted">{k}:</span> {typeof v === 'object' ? JSON.stringify(v) : String(v)}
            </dd>
          ))}
        </>
      )}
      {d.notes && (
        <>
          <dt>{t('details.notes')}</dt>
          <dd className="pre">{d.notes}</dd>
        </>
      )}
      {d.blocked && <dd className="error">{t('contacts.blocked')}</dd>}
    </dl>
  );
}

export function ConversationHistory({ contactId, exclude, linkBase }: { contactId: string; exclude?: string; linkBase: string }) {
  const { t, fmtDateTime } = useI18n();
  const list = useContactConversations(contactId);
  const items = (list.data ?? []).filter((c) => c.id !== exclude);
  return (
    <>
      {!items.length && <p className="muted small">{list.isLoading ? t('common.loading') : t('details.noPrevious')}</p>}
      <ul className="history">
        {items.map((c) => (
          <li key={c.id}>
            <Link to={`${linkBase}/${c.id}`}>
              <ChannelIcon kind={c.channel_kind} /> #{c.number} <span className={`status status-${c.status}`}>{t(`status.${c.status}` as 'status.open')}</span>
              <span className="muted small"> {fmtDateTime(c.last_message?.at ?? c.created_at)}</span>
              {c.last_message?.preview && <div className="small ellipsis">{c.last_message.preview}</div>}
            </Link>
          </li>
        ))}
      </ul>
    </>
  );
}

export function DetailsPanel({ conv, onBack }: { conv: Conversation; onBack: () => void }) {
  const { t } = useI18n();
  const { ws } = useSync();
  const parts = useParticipants(conv.id, conv.is_group);
  const name = conv.contact?.name || conv.title;
  return (
    <aside className="details" aria-label={t('details.title')}>
      <header className="pane-head">
        <button type="button" className="icon-btn only-narrow" aria-label={t('common.back')} onClick={onBack}>
          <Icon name="back" />
        </button>
        <h2>{t('details.title')}</h2>
      </header>
      <div className="details-body">
        <div className="details-contact">
          <Avatar name={name || '?'} url={conv.contact?.avatar_url} id={conv.contact?.id || conv.id} size={56} />
          <div>
            <strong>{conv.is_group ? conv.title || name : name}</strong>
            {conv.contact?.id && !conv.is_group && (
              <div>
                <Link to={`/w/${ws}/contacts/${conv.contact.id}`}>{t('details.openContact')}</Link>
              </div>
            )}
          </div>
        </div>
        {conv.is_group && (
          <section>
            <h3>{t('details.participants')}</h3>
            <ul className="participants">
              {(parts.data ?? []).map((p) => (
                <li key={p.contact_id || p.identifier}>
                  <Avatar name={p.name || p.identifier} id={p.contact_id || p.identifier} size={22} /> {p.name || p.identifier}
                  {p.role && <span className="muted small"> · {p.role}</span>}
                </li>
              ))}
            </ul>
          </section>
        )}
        {conv.contact?.id && !conv.is_group && (
          <>
            <section>
              <ContactProperties contactId={conv.contact.id} />
            </section>
            <section>
              <h3>{t('details.previous')}</h3>
              <ConversationHistory contactId={conv.contact.id} exclude={conv.id} linkBase={`/w/${ws}/inbox/all`} />
            </section>
          </>
        )}
      </div>
    </aside>
  );
}
