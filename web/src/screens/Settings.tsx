import { useEffect, useState, type FormEvent } from 'react';
import { NavLink, useParams } from 'react-router';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, wsPath } from '../api/client';
import type { Channel, Member, Page, ProviderAccount, Role } from '../api/types';
import { useSync, useSyncState } from '../sync/SyncProvider';
import { useSession } from '../session';
import { useI18n } from '../i18n';
import { Avatar, ChannelIcon, ErrorText, LabelPill, Modal } from '../components/ui';

interface KindSpec {
  config: string[];
  secrets: string[];
}

export const CHANNEL_KINDS: Record<string, KindSpec> = {
  whatsapp: { config: ['phone_number_id', 'waba_id'], secrets: ['access_token', 'app_secret', 'verify_token'] },
  messenger: { config: ['page_id'], secrets: ['page_access_token', 'app_secret', 'verify_token'] },
  instagram: { config: ['account_id'], secrets: ['access_token', 'app_secret', 'verify_token'] },
  telegram: { config: [], secrets: ['bot_token', 'webhook_secret'] },
  twilio_sms: { config: ['account_sid', 'phone_number'], secrets: ['auth_token'] },
  wappi: { config: ['provider_account_id', 'profile_id', 'network'], secrets: ['webhook_auth'] },
  email: { config: ['address', 'imap_host', 'imap_port', 'smtp_host', 'smtp_port', 'username', 'tls'], secrets: ['password'] },
  webchat: { config: ['allowed_origins', 'pre_chat_fields', 'greeting'], secrets: ['identity_secret'] },
  api: { config: ['callback_url'], secrets: ['hmac_secret'] },
};
const COMMON_CONFIG = ['api_base_url'];
const NUMERIC = new Set(['imap_port', 'smtp_port']);
const LISTS = new Set(['allowed_origins', 'pre_chat_fields']);

function configValue(k: string, v: string): unknown {
  if (NUMERIC.has(k)) return v === '' ? undefined : Number(v);
  if (k === 'tls') return v === 'true' || v === '1' || v === 'on';
  if (LISTS.has(k)) return v.split(',').map((s) => s.trim()).filter(Boolean);
  return v;
}
function configText(v: unknown): string {
  if (Array.isArray(v)) return v.join(', ');
  if (v === undefined || v === null) return '';
  return String(v);
}

function Copy({ text }: { text: string }) {
  const { t } = useI18n();
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="btn small"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => {
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        });
      }}
    >
      {done ? t('common.copied') : t('common.copy')}
    </button>
  );
}

function qrSource(data: unknown): string | null {
  const o = (data ?? {}) as Record<string, unknown>;
  for (const k of ['qr', 'qr_code', 'qrcode', 'image', 'data_url', 'qr_image']) {
    const v = o[k];
    if (typeof v === 'string' && v) {
      if (v.startsWith('data:') || v.startsWith('http') || v.startsWith('/')) return v;
      return `data:image/png;base64,${v}`;
    }
  }
  return null;
}

function Authorization({ channel }: { channel: Channel }) {
  const { t } = useI18n();
  const { ws } = useSync();
  const live = useSyncState((s) => s.channels[channel.id]);
  const status = live?.status ?? channel.status;
  const connected = status === 'active' || status === 'connected';
  const q = useQuery({
    queryKey: ['channel-auth', ws, channel.id],
    queryFn: () => api<Record<string, unknown>>(wsPath(ws, `/channels/${channel.id}/authorization`)),
    refetchInterval: connected ? false : 5000,
    enabled: !connected,
  });
  const authStatus = String(q.data?.status ?? '');
  if (connected || authStatus === 'connected' || authStatus === 'authorized') {
    return <p className="ok">✓ {t('channels.connected')}</p>;
  }
  const src = qrSource(q.data);
  return (
    <div className="qr">
      <p>{t('channels.qr')}</p>
      {src ? <img src={src} alt="QR" width={220} height={220} /> : <p className="muted">{q.isError ? String(q.error.message) : t('common.loading')}</p>}
    </div>
  );
}

function ChannelForm({ channel, onDone }: { channel?: Channel; onDone: () => void }) {
  const { t } = useI18n();
  const { ws } = useSync();
  const qc = useQueryClient();
  const [kind, setKind] = useState(channel?.kind ?? 'telegram');
  const [name, setName] = useState(channel?.name ?? '');
  const [config, setConfig] = useState<Record<string, string>>(() =>
    Object.fromEntries(Object.entries(channel?.config ?? {}).map(([k, v]) => [k, configText(v)])),
  );
  const [secrets, setSecrets] = useState<Record<string, string>>({});
  const accounts = useQuery({
    queryKey: ['provider-accounts', ws],
    queryFn: () => api<Page<ProviderAccount>>(wsPath(ws, '/provider-accounts')).then((r) => r.items ?? []),
    enabled: kind === 'wappi',
  });
  const spec = CHANNEL_KINDS[kind] ?? { config: [], secrets: [] };
  const save = useMutation({
    mutationFn: () => {
      const cfg: Record<string, unknown> = {};
      for (const k of [...spec.config, ...COMMON_CONFIG]) {
        const v = config[k];
        if (v !== undefined && v !== '') cfg[k] = configValue(k, v);
      }
      const sec = Object.fromEntries(Object.entries(secrets).filter(([, v]) => v !== ''));
      const body: Record<string, unknown> = { name, config: cfg };
      if (Object.keys(sec).length) body.secrets = sec;
      if (channel) return api<Channel>(wsPath(ws, `/channels/${channel.id}`), { method: 'PATCH', body });
      return api<Channel>(wsPath(ws, '/channels'), { body: { kind, ...body } });
    },
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: ['channels', ws] });
      onDone();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  return (
    <form onSubmit={submit} className="form-grid">
      <label className="field">
        <span>{t('channels.kind')}</span>
        <select value={kind} disabled={!!channel} onChange={(e) => setKind(e.target.value)}>
          {Object.keys(CHANNEL_KINDS).map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>{t('common.name')}</span>
        <input required value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <fieldset>
        <legend>{t('channels.config')}</legend>
        {[...spec.config, ...COMMON_CONFIG].map((k) =>
          k === 'provider_account_id' ? (
            <label className="field" key={k}>
              <span>{k}</span>
              <select value={config[k] ?? ''} onChange={(e) => setConfig({ ...config, [k]: e.target.value })}>
                <option value="">—</option>
                {(accounts.data ?? []).map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.name}
                  </option>
                ))}
              </select>
            </label>
          ) : k === 'network' ? (
            <label className="field" key={k}>
              <span>{k}</span>
              <select value={config[k] ?? 'whatsapp'} onChange={(e) => setConfig({ ...config, [k]: e.target.value })}>
                {['whatsapp', 'telegram', 'max'].map((n) => (
                  <option key={n}>{n}</option>
                ))}
              </select>
            </label>
          ) : (
            <label className="field" key={k}>
              <span>{k}</span>
              <input value={config[k] ?? ''} onChange={(e) => setConfig({ ...config, [k]: e.target.value })} />
            </label>
          ),
        )}
      </fieldset>
      <fieldset>
        <legend>{t('channels.secrets')}</legend>
        {spec.secrets.map((k) => {
          const configured = channel?.secrets?.[k]?.configured;
          return (
            <label className="field" key={k}>
              <span>
                {k} <span className={configured ? 'ok small' : 'muted small'}>({configured ? t('common.configured') : t('common.notSet')})</span>
              </span>
              <input
                type="password"
                autoComplete="new-password"
                placeholder={configured ? t('channels.secretKeep') : ''}
                value={secrets[k] ?? ''}
                onChange={(e) => setSecrets({ ...secrets, [k]: e.target.value })}
              />
            </label>
          );
        })}
      </fieldset>
      <ErrorText error={save.error} />
      <div className="row-end">
        <button type="button" className="btn" onClick={onDone}>
          {t('common.cancel')}
        </button>
        <button type="submit" className="btn primary" disabled={save.isPending}>
          {channel ? t('common.save') : t('common.create')}
        </button>
      </div>
    </form>
  );
}

function ChannelsTab() {
  const { t } = useI18n();
  const { ws } = useSync();
  const live = useSyncState((s) => s.channels);
  const q = useQuery({
    queryKey: ['channels', ws],
    queryFn: () => api<Page<Channel>>(wsPath(ws, '/channels')).then((r) => r.items ?? []),
  });
  const [editing, setEditing] = useState<Channel | 'new' | null>(null);
  const [health, setHealth] = useState<Record<string, string>>({});
  const qc = useQueryClient();
  const channels = (q.data ?? Object.values(live)).map((c) => live[c.id] ?? c);
  const checkHealth = async (c: Channel) => {
    try {
      const h = await api<{ status: string; status_detail?: string }>(wsPath(ws, `/channels/${c.id}/health`));
      setHealth((m) => ({ ...m, [c.id]: `${h.status}${h.status_detail ? ` — ${h.status_detail}` : ''}` }));
    } catch (e) {
      setHealth((m) => ({ ...m, [c.id]: e instanceof Error ? e.message : String(e) }));
    }
  };
  const remove = async (c: Channel) => {
    if (!window.confirm(`${t('common.delete')} ${c.name}?`)) return;
    await api(wsPath(ws, `/channels/${c.id}`), { method: 'DELETE' });
    void qc.invalidateQueries({ queryKey: ['channels', ws] });
  };
  return (
    <>
      <div className="row-end">
        <button type="button" className="btn primary" onClick={() => setEditing('new')}>
          + {t('channels.new')}
        </button>
      </div>
      <ul className="settings-list">
        {channels.map((c) => (
          <li key={c.id} className="settings-item">
            <div className="settings-item-head">
              <ChannelIcon kind={c.kind} network={String(c.config?.network ?? '')} />
              <strong>{c.name}</strong>
              <span className={`status status-${c.status}`}>{c.status}</span>
              {c.status_detail && <span className="muted small">{c.status_detail}</span>}
              <span className="grow" />
              <button type="button" className="btn small" onClick={() => void checkHealth(c)}>
                {t('channels.checkHealth')}
              </button>
              <button type="button" className="btn small" onClick={() => setEditing(c)}>
                {t('common.edit')}
              </button>
              <button type="button" className="btn small danger" onClick={() => void remove(c)}>
                {t('common.delete')}
              </button>
            </div>
            <div className="webhook">
              <span className="muted small">{t('channels.webhook')}:</span> <code>{c.webhook_url}</code> <Copy text={c.webhook_url} />
            </div>
            {health[c.id] && (
              <div className="small">
                {t('channels.health')}: {health[c.id]}
              </div>
            )}
            {c.kind === 'wappi' && ['whatsapp', 'max'].includes(String(c.config?.network ?? '')) && <Authorization channel={c} />}
          </li>
        ))}
      </ul>
      {editing && (
        <Modal title={editing === 'new' ? t('channels.new') : editing.name} onClose={() => setEditing(null)} wide>
          <ChannelForm channel={editing === 'new' ? undefined : editing} onDone={() => setEditing(null)} />
        </Modal>
      )}
    </>
  );
}

function MembersTab() {
  const { t } = useI18n();
  const { ws, userId } = useSync();
  const members = useSyncState((s) => s.members);
  const qc = useQueryClient();
  const [form, setForm] = useState({ email: '', name: '', password: '', role: 'agent' as Role });
  const [err, setErr] = useState<unknown>(null);
  const [list, setList] = useState<Member[] | null>(null);
  const refresh = () => api<Page<Member>>(wsPath(ws, '/members')).then((r) => setList(r.items ?? []), setErr);
  useEffect(() => {
    void api<Page<Member>>(wsPath(ws, '/members')).then((r) => setList(r.items ?? []), setErr);
  }, [ws]);
  const all = (list ?? Object.values(members)).map((m) => members[m.id] ?? m);
  const add = async (e: FormEvent) => {
    e.preventDefault();
    setErr(null);
    try {
      await api(wsPath(ws, '/members'), { body: form });
      setForm({ email: '', name: '', password: '', role: 'agent' });
      await refresh();
    } catch (x) {
      setErr(x);
    }
  };
  const setRole = async (m: Member, role: string) => {
    try {
      await api(wsPath(ws, `/members/${m.id}`), { method: 'PATCH', body: { role } });
      await refresh();
    } catch (x) {
      setErr(x);
    }
  };
  const remove = async (m: Member) => {
    if (!window.confirm(t('members.remove', { name: m.name || m.email }))) return;
    try {
      await api(wsPath(ws, `/members/${m.id}`), { method: 'DELETE' });
      await refresh();
      void qc.invalidateQueries({ queryKey: ['counts', ws] });
    } catch (x) {
      setErr(x);
    }
  };
  return (
    <>
      <ul className="settings-list">
        {all.map((m) => (
          <li key={m.id} className="settings-item settings-item-head">
            <Avatar name={m.name || m.email} url={m.avatar_url} id={m.id} size={28} />
            <strong>{m.name}</strong> <span className="muted small">{m.email}</span>
            <span className="grow" />
            <select aria-label={`${t('members.role')}: ${m.name}`} value={m.role} disabled={m.id === userId || m.role === 'owner'} onChange={(e) => void setRole(m, e.target.value)}>
              {(['owner', 'admin', 'agent'] as const).map((r) => (
                <option key={r} value={r} disabled={r === 'owner'}>
                  {t(`role.${r}`)}
                </option>
              ))}
            </select>
            <button type="button" className="btn small danger" aria-label={t('members.remove', { name: m.name || m.email })} disabled={m.id === userId || m.role === 'owner'} onClick={() => void remove(m)}>
              {t('common.delete')}
            </button>
          </li>
        ))}
      </ul>
      <form className="inline-form" onSubmit={add} aria-label={t('members.invite')}>
        <h3>{t('members.invite')}</h3>
        <input aria-label={t('common.email')} placeholder={t('common.email')} type="email" required value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} />
        <input aria-label={t('common.name')} placeholder={t('common.name')} value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        <input aria-label={t('common.password')} placeholder={t('common.password')} type="password" autoComplete="new-password" value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} />
        <select aria-label={t('members.role')} value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
          <option value="agent">{t('role.agent')}</option>
          <option value="admin">{t('role.admin')}</option>
        </select>
        <button type="submit" className="btn primary">
          {t('common.add')}
        </button>
      </form>
      <ErrorText error={err} />
    </>
  );
}

function TeamsTab() {
  const { t } = useI18n();
  const { ws } = useSync();
  const teams = useSyncState((s) => s.teams);
  const members = useSyncState((s) => s.members);
  const qc = useQueryClient();
  const [form, setForm] = useState<{ id?: string; name: string; description: string; member_ids: string[] }>({ name: '', description: '', member_ids: [] });
  const save = useMutation({
    mutationFn: () =>
      form.id
        ? api(wsPath(ws, `/teams/${form.id}`), { method: 'PATCH', body: { name: form.name, description: form.description, member_ids: form.member_ids } })
        : api(wsPath(ws, '/teams'), { body: { name: form.name, description: form.description, member_ids: form.member_ids } }),
    onSuccess: () => {
      setForm({ name: '', description: '', member_ids: [] });
      void qc.invalidateQueries({ queryKey: ['teams', ws] });
    },
  });
  const del = useMutation({ mutationFn: (id: string) => api(wsPath(ws, `/teams/${id}`), { method: 'DELETE' }) });
  return (
    <>
      <ul className="settings-list">
        {Object.values(teams).map((tm) => (
          <li key={tm.id} className="settings-item settings-item-head">
            <strong>{tm.name}</strong>
            <span className="muted small">{tm.description}</span>
            <span className="small">{(tm.member_ids ?? []).map((id) => members[id]?.name ?? '').join(', ')}</span>
            <span className="grow" />
            <button type="button" className="btn small" onClick={() => setForm({ id: tm.id, name: tm.name, description: tm.description, member_ids: tm.member_ids ?? [] })}>
              {t('common.edit')}
            </button>
            <button type="button" className="btn small danger" onClick={() => del.mutate(tm.id)}>
              {t('common.delete')}
            </button>
          </li>
        ))}
      </ul>
      <form
        className="inline-form"
        aria-label={t('teams.new')}
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <h3>{form.id ? form.name : t('teams.new')}</h3>
        <input aria-label={t('common.name')} placeholder={t('common.name')} required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        <input aria-label={t('teams.description')} placeholder={t('teams.description')} value={form.description} onChange={(e) => setForm({ ...form, description: e.target.value })} />
        <fieldset className="checks">
          <legend>{t('teams.members')}</legend>
          {Object.values(members).map((m) => (
            <label key={m.id} className="check-row">
              <input
                type="checkbox"
                checked={form.member_ids.includes(m.id)}
                onChange={(e) => setForm({ ...form, member_ids: e.target.checked ? [...form.member_ids, m.id] : form.member_ids.filter((x) => x !== m.id) })}
              />
              {m.name || m.email}
            </label>
          ))}
        </fieldset>
        <button type="submit" className="btn primary">
          {form.id ? t('common.save') : t('common.create')}
        </button>
      </form>
      <ErrorText error={save.error ?? del.error} />
    </>
  );
}

function LabelsTab() {
  const { t } = useI18n();
  const { ws } = useSync();
  const labels = useSyncState((s) => s.labels);
  const [form, setForm] = useState<{ id?: string; name: string; color: string; description: string }>({ name: '', color: '#2563eb', description: '' });
  const save = useMutation({
    mutationFn: () => {
      const body = { name: form.name, color: form.color, description: form.description };
      return form.id ? api(wsPath(ws, `/labels/${form.id}`), { method: 'PATCH', body }) : api(wsPath(ws, '/labels'), { body });
    },
    onSuccess: () => setForm({ name: '', color: '#2563eb', description: '' }),
  });
  const del = useMutation({ mutationFn: (id: string) => api(wsPath(ws, `/labels/${id}`), { method: 'DELETE' }) });
  return (
    <>
      <ul className="settings-list">
        {Object.values(labels).map((l) => (
          <li key={l.id} className="settings-item settings-item-head">
            <LabelPill name={l.name} color={l.color} />
            <span className="muted small">{l.description}</span>
            <span className="grow" />
            <button type="button" className="btn small" onClick={() => setForm({ id: l.id, name: l.name, color: l.color || '#2563eb', description: l.description })}>
              {t('common.edit')}
            </button>
            <button type="button" className="btn small danger" onClick={() => del.mutate(l.id)}>
              {t('common.delete')}
            </button>
          </li>
        ))}
      </ul>
      <form
        className="inline-form"
        aria-label={t('labels.new')}
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <h3>{form.id ? form.name : t('labels.new')}</h3>
        <input aria-label={t('common.name')} placeholder={t('common.name')} required value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        <input aria-label={t('labels.color')} type="color" value={form.color} onChange={(e) => setForm({ ...form, color: e.target.value })} />
        <input aria-label={t('teams.description')} placeholder={t('teams.description')} value={form.description} onChange={(e) => setForm({ ...form, description: e.target.value })} />
        <button type="submit" className="btn primary">
          {form.id ? t('common.save') : t('common.create')}
        </button>
      </form>
      <ErrorText error={save.error ?? del.error} />
    </>
  );
}

export function Settings() {
  const { t } = useI18n();
  const { ws = '', tab = 'channels' } = useParams();
  const { me } = useSession();
  const role = me?.workspaces.find((w) => w.id === ws)?.role;
  const tabs = ['channels', 'members', 'teams', 'labels'] as const;
  return (
    <div className="settings">
      <header className="pane-head">
        <h1>{t('settings.title')}</h1>
        <nav className="tabs" aria-label={t('settings.title')}>
          {tabs.map((x) => (
            <NavLink key={x} to={`/w/${ws}/settings/${x}`} className={({ isActive }) => `view-tab${isActive ? ' active' : ''}`}>
              {t(`settings.${x}`)}
            </NavLink>
          ))}
        </nav>
      </header>
      <div className="settings-body">
        {role === 'agent' ? (
          <p className="muted">{t('settings.adminOnly')}</p>
        ) : tab === 'members' ? (
          <MembersTab />
        ) : tab === 'teams' ? (
          <TeamsTab />
        ) : tab === 'labels' ? (
          <LabelsTab />
        ) : (
          <ChannelsTab />
        )}
      </div>
    </div>
  );
}
