import { useState, type FormEvent } from 'react';
import { api } from '../api/client';
import type { Me, Workspace } from '../api/types';
import { useSession } from '../session';
import { useI18n } from '../i18n';
import { ErrorText } from '../components/ui';
import { LangSwitch } from './Shell';
import { useOptionalSync } from '../sync/SyncProvider';

export function Profile({ standalone }: { standalone?: boolean }) {
  const { t } = useI18n();
  const { me, setMe, refresh, logout } = useSession();
  const [name, setName] = useState(me?.user.name ?? '');
  const [avatar, setAvatar] = useState(me?.user.avatar_url ?? '');
  const [availability, setAvailability] = useState(me?.user.availability || 'online');
  const [password, setPassword] = useState('');
  const [current, setCurrent] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [wsName, setWsName] = useState('');
  const sync = useOptionalSync();
  if (!me) return null;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const body: Record<string, unknown> = { name, avatar_url: avatar, availability };
    if (password) {
      body.password = password;
      body.current_password = current;
    }
    try {
      const m = await api<Me>('/me', { method: 'PATCH', body });
      if (m?.user) setMe(m);
      else await refresh();
      sync?.send({ type: 'presence', status: availability });
      setPassword('');
      setCurrent('');
      setSaved(true);
    } catch (x) {
      setError(x);
    }
  };
  const createWs = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api<Workspace>('/workspaces', { body: { name: wsName } });
      await refresh();
    } catch (x) {
      setError(x);
    }
  };
  return (
    <div className={standalone ? 'auth' : 'settings'}>
      <form className={standalone ? 'auth-card' : 'settings-body narrow-form'} onSubmit={submit} aria-label={t('profile.title')}>
        <h1>{t('profile.title')}</h1>
        <p className="muted">{me.user.email}</p>
        <label className="field">
          <span>{t('common.name')}</span>
          <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="name" />
        </label>
        <label className="field">
          <span>{t('profile.avatar')}</span>
          <input type="url" value={avatar} onChange={(e) => setAvatar(e.target.value)} />
        </label>
        <label className="field">
          <span>{t('profile.availability')}</span>
          <select value={availability} onChange={(e) => setAvailability(e.target.value)}>
            {(['online', 'away', 'busy'] as const).map((a) => (
              <option key={a} value={a}>
                {t(`availability.${a}`)}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>{t('profile.newPassword')}</span>
          <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        {password && (
          <label className="field">
            <span>{t('profile.currentPassword')}</span>
            <input type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
          </label>
        )}
        <ErrorText error={error} />
        {saved && (
          <p className="ok" role="status">
            {t('profile.saved')}
          </p>
        )}
        <button type="submit" className="btn primary">
          {t('common.save')}
        </button>
        <LangSwitch />
        {standalone && (
          <button type="button" className="btn" onClick={() => void logout()}>
            {t('logout')}
          </button>
        )}
      </form>
      {standalone && (
        <form className="auth-card" onSubmit={createWs} aria-label={t('nav.newWorkspace')}>
          <label className="field">
            <span>{t('setup.workspace')}</span>
            <input required value={wsName} onChange={(e) => setWsName(e.target.value)} />
          </label>
          <button type="submit" className="btn primary">
            {t('common.create')}
          </button>
        </form>
      )}
    </div>
  );
}
