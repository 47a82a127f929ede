import { useState, type FormEvent } from 'react';
import { api } from '../api/client';
import { useSession } from '../session';
import { useI18n } from '../i18n';
import { ErrorText } from '../components/ui';
import { LangSwitch } from './Shell';

export function Setup() {
  const { t } = useI18n();
  const { login } = useSession();
  const [form, setForm] = useState({ workspace: '', name: '', email: '', password: '' });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('/setup', { body: form });
      await login(form.email, form.password);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const field = (k: keyof typeof form, label: string, type = 'text', auto?: string) => (
    <label className="field">
      <span>{label}</span>
      <input
        name={k}
        type={type}
        required
        autoComplete={auto}
        value={form[k]}
        onChange={(e) => setForm({ ...form, [k]: e.target.value })}
      />
    </label>
  );
  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} aria-label={t('setup.title')}>
        <h1>{t('setup.title')}</h1>
        <p className="muted">{t('setup.intro')}</p>
        {field('workspace', t('setup.workspace'), 'text', 'organization')}
        {field('name', t('common.name'), 'text', 'name')}
        {field('email', t('common.email'), 'email', 'username')}
        {field('password', t('common.password'), 'password', 'new-password')}
        <ErrorText error={error} />
        <button className="btn primary" type="submit" disabled={busy}>
          {t('setup.submit')}
        </button>
        <LangSwitch />
      </form>
    </main>
  );
}

export function Login() {
  const { t } = useI18n();
  const { login } = useSession();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(email, password);
    } catch (err) {
      setError(err instanceof Error && 'status' in err && err.status === 401 ? new Error(t('login.failed')) : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="auth">
      <form className="auth-card" onSubmit={submit} aria-label={t('login.title')}>
        <h1>{t('login.title')}</h1>
        <label className="field">
          <span>{t('common.email')}</span>
          <input name="email" type="email" required autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label className="field">
          <span>{t('common.password')}</span>
          <input
            name="password"
            type="password"
            required
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <ErrorText error={error} />
        <button className="btn primary" type="submit" disabled={busy}>
          {t('login.submit')}
        </button>
        <LangSwitch />
      </form>
    </main>
  );
}
