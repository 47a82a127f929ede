import type { ReactNode } from 'react';
import { NavLink, useLocation, useNavigate, useParams } from 'react-router';
import { useI18n, LANGS, type Lang } from '../i18n';
import { useSession } from '../session';
import { Avatar } from '../components/ui';
import { useLive } from '../sync/SyncProvider';
import { api } from '../api/client';
import { Icon } from '../components/icons';
import { ErrorBoundary } from '../components/ErrorBoundary';
import type { Workspace } from '../api/types';

export function LangSwitch() {
  const { lang, setLang, t } = useI18n();
  return (
    <label className="lang-switch">
      <span className="sr-only">{t('nav.language')}</span>
      <select aria-label={t('nav.language')} value={lang} onChange={(e) => setLang(e.target.value as Lang)}>
        {LANGS.map((l) => (
          <option key={l} value={l}>
            {l === 'en' ? 'English' : 'Русский'}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Shell({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  const { ws = '' } = useParams();
  const { me, logout, refresh } = useSession();
  const navigate = useNavigate();
  const live = useLive();
  const { pathname } = useLocation();
  if (!me) return null;
  const role = me.workspaces.find((w) => w.id === ws)?.role;
  const switchWs = async (id: string) => {
    if (id === '__new') {
      const name = window.prompt(t('nav.newWorkspace'));
      if (!name) return;
      const w = await api<Workspace>('/workspaces', { body: { name } });
      await refresh();
      navigate(`/w/${w.id}/inbox/mine`);
      return;
    }
    navigate(`/w/${id}/inbox/mine`);
  };
  return (
    <div className="shell">
      <nav className="rail" aria-label="Main">
        <div className="rail-top">
          <NavLink
            to={`/w/${ws}/inbox/mine`}
            className={pathname.includes('/inbox/') ? 'rail-link active' : 'rail-link'}
            aria-current={pathname.includes('/inbox/') ? 'page' : undefined}
            aria-label={t('nav.messages')} title={t('nav.messages')}>
            <Icon name="chat" size={20} />
            <small>{t('nav.messages')}</small>
          </NavLink>
          <NavLink to={`/w/${ws}/contacts`} className="rail-link" aria-label={t('nav.contacts')} title={t('nav.contacts')}>
            <Icon name="user" size={20} />
            <small>{t('nav.contacts')}</small>
          </NavLink>
          {role !== 'agent' && (
            <NavLink to={`/w/${ws}/settings/channels`} className="rail-link" aria-label={t('nav.settings')} title={t('nav.settings')}>
              <Icon name="gear" size={20} />
              <small>{t('nav.settings')}</small>
            </NavLink>
          )}
        </div>
        <div className="rail-bottom">
          {live.conn !== 'open' && (
            <span className="conn-dot" role="status" title={t('common.offline')} aria-label={t('common.offline')} />
          )}
          <select
            className="ws-switch"
            aria-label={t('nav.workspace')}
            value={ws}
            onChange={(e) => void switchWs(e.target.value)}
          >
            {me.workspaces.map((w) => (
              <option key={w.id} value={w.id}>
                {w.name}
              </option>
            ))}
            <option value="__new">{t('nav.newWorkspace')}</option>
          </select>
          <LangSwitch />
          <NavLink to={`/w/${ws}/profile`} className="rail-link" aria-label={t('nav.profile')} title={t('nav.profile')}>
            <Avatar name={me.user.name || me.user.email} url={me.user.avatar_url} id={me.user.id} size={28} />
            <span className={`presence presence-${me.user.availability || 'online'}`} aria-hidden="true" />
          </NavLink>
          <button type="button" className="rail-link" aria-label={t('logout')} title={t('logout')} onClick={() => void logout()}>
            <Icon name="logout" size={20} />
          </button>
        </div>
      </nav>
      <div className="shell-main">
        <ErrorBoundary key={pathname} message={t('common.error')} retry={t('common.retry')}>
          {children}
        </ErrorBoundary>
      </div>
    </div>
  );
}
