import { lazy, Suspense } from 'react';
import { Navigate, Route, Routes, useParams } from 'react-router';
import { useSession } from './session';
import { Setup, Login } from './screens/Auth';
import { Shell } from './screens/Shell';
import { SyncProvider } from './sync/SyncProvider';
import { Inbox } from './screens/Inbox';
import { Profile } from './screens/Profile';
import { useI18n } from './i18n';

// less used screens load on demand: the inbox paints first
const Contacts = lazy(() => import('./screens/Contacts').then((m) => ({ default: m.Contacts })));
const Settings = lazy(() => import('./screens/Settings').then((m) => ({ default: m.Settings })));

function lastWorkspace(ids: string[]): string | undefined {
  try {
    const w = localStorage.getItem('parley.ws');
    if (w && ids.includes(w)) return w;
  } catch {
    /* ignore */
  }
  return ids[0];
}

function Workspace() {
  const { ws = '' } = useParams();
  const { me } = useSession();
  if (!me) return null;
  if (!me.workspaces.some((w) => w.id === ws)) return <Navigate to="/" replace />;
  try {
    localStorage.setItem('parley.ws', ws);
  } catch {
    /* ignore */
  }
  return (
    <SyncProvider key={ws} ws={ws} userId={me.user.id}>
      <Shell>
        <Suspense fallback={<div className="center-screen" aria-busy="true"><span className="spinner" /></div>}>
        <Routes>
          <Route path="inbox/:view/:convId?" element={<Inbox />} />
          <Route path="contacts/:contactId?" element={<Contacts />} />
          <Route path="settings/:tab?" element={<Settings />} />
          <Route path="profile" element={<Profile />} />
          <Route path="*" element={<Navigate to="inbox/mine" replace />} />
        </Routes>
        </Suspense>
      </Shell>
    </SyncProvider>
  );
}

export function App() {
  const { status, me, error, refresh } = useSession();
  const { t } = useI18n();
  if (status === 'loading') {
    return (
      <div className="center-screen" aria-busy="true">
        <span className="spinner" aria-label={t('common.loading')} />
      </div>
    );
  }
  if (status === 'error') {
    return (
      <div className="center-screen" role="alert">
        <p>{error || t('common.error')}</p>
        <button type="button" className="btn" onClick={() => void refresh()}>
          {t('common.retry')}
        </button>
      </div>
    );
  }
  if (status === 'setup') {
    return (
      <Routes>
        <Route path="*" element={<Setup />} />
      </Routes>
    );
  }
  if (status === 'anonymous' || !me) {
    return (
      <Routes>
        <Route path="*" element={<Login />} />
      </Routes>
    );
  }
  const first = lastWorkspace(me.workspaces.map((w) => w.id));
  return (
    <Routes>
      <Route path="/w/:ws/*" element={<Workspace />} />
      <Route path="*" element={first ? <Navigate to={`/w/${first}/inbox/mine`} replace /> : <Profile standalone />} />
    </Routes>
  );
}
