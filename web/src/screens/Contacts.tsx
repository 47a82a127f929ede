import { useEffect, useMemo, useRef, useState } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, qs, wsPath } from '../api/client';
import type { Contact, Page } from '../api/types';
import { useContact, useContactConversations, useConversation } from '../api/hooks';
import { useSync, useSyncState } from '../sync/SyncProvider';
import { useI18n } from '../i18n';
import { Avatar, ChannelIcon, ErrorText, Modal } from '../components/ui';
import { ContactProperties } from '../components/DetailsPanel';
import { Thread } from '../components/Thread';
import { Icon } from '../components/icons';

function useContactsList(q: string) {
  const { ws } = useSync();
  return useInfiniteQuery({
    queryKey: ['contacts', ws, q],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam, signal }) => api<Page<Contact>>(wsPath(ws, `/contacts${qs({ q, limit: 50, cursor: pageParam })}`), { signal }),
    getNextPageParam: (p) => p.next_cursor || undefined,
    staleTime: 15_000,
  });
}

export function MergeDialog({ contacts, onClose, onMerged }: { contacts: Contact[]; onClose: () => void; onMerged: (c: Contact) => void }) {
  const { t } = useI18n();
  const { ws } = useSync();
  const qc = useQueryClient();
  const [primary, setPrimary] = useState(contacts[0]?.id ?? '');
  const [keepName, setKeepName] = useState(contacts[0]?.id ?? '');
  const [keepAvatar, setKeepAvatar] = useState(contacts.find((c) => c.avatar_url)?.id ?? contacts[0]?.id ?? '');
  const [selected, setSelected] = useState<string[]>(contacts.map((c) => c.id));
  const merge = useMutation({
    mutationFn: () =>
      api<Contact>(wsPath(ws, '/contacts/merge'), {
        body: {
          primary_id: primary,
          merge_ids: selected.filter((id) => id !== primary),
          keep: { name: keepName, avatar_url: keepAvatar },
        },
      }),
    onSuccess: (c) => {
      void qc.invalidateQueries({ queryKey: ['contacts', ws] });
      void qc.invalidateQueries({ queryKey: ['contact', ws] });
      onMerged(c);
    },
  });
  return (
    <Modal title={t('contacts.mergeTitle')} onClose={onClose} wide>
      <p className="muted">{t('contacts.mergeIntro')}</p>
      <table className="merge-table">
        <thead>
          <tr>
            <th scope="col">{t('contacts.merge')}</th>
            <th scope="col">{t('contacts.primary')}</th>
            <th scope="col">{t('common.name')}</th>
            <th scope="col">{t('profile.avatar')}</th>
            <th scope="col">{t('details.phones')} / {t('details.emails')}</th>
          </tr>
        </thead>
        <tbody>
          {contacts.map((c) => (
            <tr key={c.id}>
              <td>
                <input
                  type="checkbox"
                  aria-label={`${t('contacts.merge')} ${c.name}`}
                  checked={selected.includes(c.id)}
                  disabled={c.id === primary}
                  onChange={(e) => setSelected(e.target.checked ? [...selected, c.id] : selected.filter((x) => x !== c.id))}
                />
              </td>
              <td>
                <input type="radio" name="primary" aria-label={`${t('contacts.primary')}: ${c.name}`} checked={primary === c.id} onChange={() => setPrimary(c.id)} />
              </td>
              <td>
                <label>
                  <input type="radio" name="keep-name" checked={keepName === c.id} onChange={() => setKeepName(c.id)} /> {c.name || '—'}
                </label>
              </td>
              <td>
                <label>
                  <input type="radio" name="keep-avatar" checked={keepAvatar === c.id} onChange={() => setKeepAvatar(c.id)} />{' '}
                  <Avatar name={c.name} url={c.avatar_url} id={c.id} size={22} />
                </label>
              </td>
              <td className="small">{[...(c.phones ?? []), ...(c.emails ?? [])].join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <ErrorText error={merge.error} />
      <div className="row-end">
        <button type="button" className="btn" onClick={onClose}>
          {t('common.cancel')}
        </button>
        <button type="button" className="btn primary" disabled={merge.isPending || selected.filter((id) => id !== primary).length === 0} onClick={() => merge.mutate()}>
          {t('contacts.merge')}
        </button>
      </div>
    </Modal>
  );
}

function EmbeddedConversation({ id }: { id: string }) {
  const live = useSyncState((s) => s.conversations[id]);
  const fetched = useConversation(live ? undefined : id);
  const conv = live ?? fetched.data;
  const ref = useRef<HTMLTextAreaElement>(null);
  if (!conv) return null;
  return (
    <div className="embedded-thread">
      <Thread key={conv.id} conv={conv} composerRef={ref} />
    </div>
  );
}

function ContactCard({ id }: { id: string }) {
  const { t, fmtDateTime } = useI18n();
  const { ws } = useSync();
  const navigate = useNavigate();
  const c = useContact(id);
  const convs = useContactConversations(id);
  const dups = useQuery({
    queryKey: ['contact', ws, id, 'duplicates'],
    queryFn: async () => {
      const r = await api<Page<Contact>>(wsPath(ws, `/contacts/${id}/duplicates`));
      return r.items ?? [];
    },
    staleTime: 30_000,
  });
  const [merging, setMerging] = useState(false);
  const [openConv, setOpenConv] = useState<string | null>(null);
  useEffect(() => setOpenConv(null), [id]);
  if (!c.data) return <div className="empty-pane muted">{c.isError ? t('common.error') : t('common.loading')}</div>;
  const d = c.data;
  const selectedConv = openConv ?? convs.data?.[0]?.id ?? null;
  return (
    <div className="contact-card-pane">
      <header className="pane-head">
        <Link to={`/w/${ws}/contacts`} className="icon-btn only-narrow" aria-label={t('common.back')}>
          <Icon name="back" />
        </Link>
        <Avatar name={d.name} url={d.avatar_url} id={d.id} size={40} />
        <h2>{d.name || '—'}</h2>
      </header>
      <div className="contact-body">
        <div className="contact-side">
          <section>
            <h3>{t('contacts.properties')}</h3>
            <ContactProperties contactId={id} />
          </section>
          {(dups.data?.length ?? 0) > 0 && (
            <section className="dups" aria-label={t('contacts.duplicates')}>
              <h3>{t('contacts.duplicates')}</h3>
              <ul>
                {dups.data?.map((x) => (
                  <li key={x.id}>
                    <Avatar name={x.name} url={x.avatar_url} id={x.id} size={20} /> {x.name}{' '}
                    <span className="muted small">{[...(x.phones ?? []), ...(x.emails ?? [])].join(', ')}</span>
                  </li>
                ))}
              </ul>
              <button type="button" className="btn small primary" onClick={() => setMerging(true)}>
                {t('contacts.merge')}
              </button>
            </section>
          )}
          <section>
            <h3>{t('contacts.conversations')}</h3>
            <ul className="history">
              {(convs.data ?? []).map((cv) => (
                <li key={cv.id}>
                  <button type="button" className={`linkish${cv.id === selectedConv ? ' active' : ''}`} onClick={() => setOpenConv(cv.id)}>
                    <ChannelIcon kind={cv.channel_kind} /> #{cv.number} <span className={`status status-${cv.status}`}>{t(`status.${cv.status}` as 'status.open')}</span>{' '}
                    <span className="muted small">{fmtDateTime(cv.last_message?.at ?? cv.created_at)}</span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        </div>
        {selectedConv && <EmbeddedConversation id={selectedConv} />}
      </div>
      {merging && dups.data && (
        <MergeDialog
          contacts={[d, ...dups.data]}
          onClose={() => setMerging(false)}
          onMerged={(m) => {
            setMerging(false);
            navigate(`/w/${ws}/contacts/${m.id}`);
          }}
        />
      )}
    </div>
  );
}

export function Contacts() {
  const { t } = useI18n();
  const { ws = '', contactId } = useParams();
  const [sp, setSp] = useSearchParams();
  const [q, setQ] = useState(sp.get('q') ?? '');
  const [debounced, setDebounced] = useState(q);
  useEffect(() => {
    const h = setTimeout(() => setDebounced(q), 250);
    return () => clearTimeout(h);
  }, [q]);
  const mode = sp.get('mode') === 'grid' ? 'grid' : 'list';
  const list = useContactsList(debounced);
  const items = useMemo(() => (list.data?.pages ?? []).flatMap((p) => p.items ?? []), [list.data]);
  return (
    <div className={`contacts ${contactId ? 'pane-thread' : 'pane-list'}`}>
      <section className="contacts-list" aria-label={t('contacts.title')}>
        <header className="queue-head">
          <h1 className="queue-title">{t('contacts.title')}</h1>
          <input className="search" type="search" aria-label={t('contacts.search')} placeholder={t('contacts.search')} value={q} onChange={(e) => setQ(e.target.value)} />
          <div className="seg" role="group">
            <button type="button" aria-pressed={mode === 'list'} className={`btn small${mode === 'list' ? ' active' : ''}`} onClick={() => setSp({ mode: 'list' })}>
              {t('contacts.list')}
            </button>
            <button type="button" aria-pressed={mode === 'grid'} className={`btn small${mode === 'grid' ? ' active' : ''}`} onClick={() => setSp({ mode: 'grid' })}>
              {t('contacts.grid')}
            </button>
          </div>
        </header>
        <div className={`contacts-scroll ${mode}`}>
          {!items.length && <p className="muted pad">{list.isLoading ? t('common.loading') : t('contacts.empty')}</p>}
          {items.map((c) => (
            <Link key={c.id} to={`/w/${ws}/contacts/${c.id}${mode === 'grid' ? '?mode=grid' : ''}`} className={`contact-row${c.id === contactId ? ' selected' : ''}`}>
              <Avatar name={c.name} url={c.avatar_url} id={c.id} size={mode === 'grid' ? 48 : 32} />
              <span className="contact-name">{c.name || '—'}</span>
              <span className="muted small ellipsis">{[...(c.phones ?? []), ...(c.emails ?? [])].join(', ')}</span>
            </Link>
          ))}
          {list.hasNextPage && (
            <button type="button" className="btn small" onClick={() => void list.fetchNextPage()}>
              {t('common.loadMore')}
            </button>
          )}
        </div>
      </section>
      <section className="contact-pane">{contactId ? <ContactCard id={contactId} /> : <div className="empty-pane muted">{t('contacts.select')}</div>}</section>
    </div>
  );
}
