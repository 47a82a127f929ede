import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { api, ApiError, onUnauthorized, setCsrfToken } from './api/client';
import type { Me } from './api/types';

type Status = 'loading' | 'setup' | 'anonymous' | 'authenticated' | 'error';

interface Session {
  status: Status;
  me: Me | null;
  error: string;
  refresh: () => Promise<void>;
  login: (email: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
  setMe: (me: Me) => void;
}

const Ctx = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const [status, setStatus] = useState<Status>('loading');
  const [me, setMeState] = useState<Me | null>(null);
  const [error, setError] = useState('');

  const setMe = useCallback((m: Me) => {
    if (m.csrf_token) setCsrfToken(m.csrf_token);
    setMeState((old) => ({ ...m, csrf_token: m.csrf_token || old?.csrf_token || '' }));
    setStatus('authenticated');
  }, []);

  const refresh = useCallback(async () => {
    try {
      const m = await api<Me>('/me', { quiet401: true });
      setMe(m);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        try {
          const s = await api<{ needed: boolean }>('/setup', { quiet401: true });
          setStatus(s.needed ? 'setup' : 'anonymous');
        } catch {
          setStatus('anonymous');
        }
      } else {
        setError(e instanceof Error ? e.message : String(e));
        setStatus('error');
      }
    }
  }, [setMe]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  useEffect(
    () =>
      onUnauthorized(() => {
        setMeState(null);
        setCsrfToken('');
        qc.clear();
        setStatus('anonymous');
      }),
    [qc],
  );

  const login = useCallback(
    async (email: string, password: string) => {
      const m = await api<Me>('/auth/login', { body: { email, password }, quiet401: true });
      qc.clear();
      setMe(m);
    },
    [qc, setMe],
  );

  const logout = useCallback(async () => {
    try {
      await api('/auth/logout', { method: 'POST' });
    } finally {
      setCsrfToken('');
      setMeState(null);
      qc.clear();
      setStatus('anonymous');
    }
  }, [qc]);

  const value = useMemo<Session>(
    () => ({ status, me, error, refresh, login, logout, setMe }),
    [status, me, error, refresh, login, logout, setMe],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useSession(): Session {
  const v = useContext(Ctx);
  if (!v) throw new Error('useSession outside SessionProvider');
  return v;
}
