import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useSyncExternalStore, type ReactNode } from 'react';
import { useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api, ApiError, qs, wsPath } from '../api/client';
import type { Change, ServerFrame, Snapshot, SyncPage } from '../api/types';
import { applyChanges, fromSnapshot, markReadLocal, type SyncState } from './reducer';
import { removeMessage, upsertMessage, type MessagePages } from './messages';
import { backoff, LiveStore, type LiveSnapshot } from './live';

export const syncKey = (ws: string) => ['sync', ws] as const;
export const messagesKey = (ws: string, conv: string) => ['messages', ws, conv] as const;

interface SyncApi {
  ws: string;
  userId: string;
  live: LiveStore;
  send: (frame: Record<string, unknown>) => void;
  setOpenConversation: (id: string | null) => void;
  onRemoved: (fn: (ids: string[]) => void) => () => void;
  markRead: (conversationId: string) => void;
  resync: () => Promise<void>;
}

const Ctx = createContext<SyncApi | null>(null);

async function loadSnapshot(ws: string, userId: string): Promise<SyncState> {
  const snap = await api<Snapshot>(wsPath(ws, '/sync/snapshot'));
  return fromSnapshot(snap, userId);
}

export function applyToCache(
  qc: QueryClient,
  ws: string,
  changes: Change[],
  openConversationId: string | null,
): { removed: string[] } {
  const prev = qc.getQueryData<SyncState>(syncKey(ws));
  if (!prev) return { removed: [] };
  const r = applyChanges(prev, changes, { openConversationId });
  if (!r.changed) return { removed: [] };
  qc.setQueryData(syncKey(ws), r.state);
  for (const eff of r.messages) {
    if (eff.op === 'upsert' && eff.message) {
      const key = messagesKey(ws, eff.message.conversation_id);
      if (qc.getQueryData(key)) qc.setQueryData<MessagePages>(key, (d) => upsertMessage(d, eff.message!));
    } else {
      const convs = eff.conversationId ? [eff.conversationId] : null;
      for (const q of qc.getQueryCache().findAll({ queryKey: ['messages', ws] })) {
        if (convs && q.queryKey[2] !== convs[0]) continue;
        qc.setQueryData<MessagePages>(q.queryKey, (d) => removeMessage(d, eff.id));
      }
    }
  }
  for (const id of r.contactsChanged) {
    void qc.invalidateQueries({ queryKey: ['contact', ws, id] });
  }
  if (r.contactsChanged.length) void qc.invalidateQueries({ queryKey: ['contacts', ws] });
  return { removed: r.removedConversations };
}

export function SyncProvider({ ws, userId, children }: { ws: string; userId: string; children: ReactNode }) {
  const qc = useQueryClient();
  const live = useMemo(() => new LiveStore(), []);
  const openRef = useRef<string | null>(null);
  const socketRef = useRef<WebSocket | null>(null);
  const removedListeners = useRef(new Set<(ids: string[]) => void>());
  const snapshot = useQuery({
    queryKey: syncKey(ws),
    queryFn: () => loadSnapshot(ws, userId),
    staleTime: Infinity,
    gcTime: 0,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
    retry: 2,
  });
  const ready = !!snapshot.data;

  const resync = useCallback(async () => {
    await qc.refetchQueries({ queryKey: syncKey(ws), exact: true });
    // everything derived from the old cursor may be stale
    void qc.invalidateQueries({ predicate: (q) => q.queryKey[0] !== 'sync' && q.queryKey[1] === ws });
  }, [qc, ws]);

  const countsTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const apply = useCallback(
    (changes: Change[]) => {
      const { removed } = applyToCache(qc, ws, changes, openRef.current);
      if (removed.length) removedListeners.current.forEach((fn) => fn(removed));
      if (changes.some((c) => c.entity === 'conversation') && !countsTimer.current) {
        countsTimer.current = setTimeout(() => {
          countsTimer.current = null;
          void qc.invalidateQueries({ queryKey: ['counts', ws] });
        }, 1500);
      }
    },
    [qc, ws],
  );

  // WebSocket with resume and backoff
  useEffect(() => {
    if (!ready) return;
    let stopped = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let pending: Change[] = [];
    let flushTimer: ReturnType<typeof setTimeout> | null = null;
    let pingTimer: ReturnType<typeof setInterval> | null = null;
    // a resync in flight: reconnecting must wait for the new snapshot's cursor
    let resyncing: Promise<void> | null = null;
    const startResync = () => {
      if (!resyncing) resyncing = resync().finally(() => (resyncing = null));
      return resyncing;
    };

    const flush = () => {
      flushTimer = null;
      const batch = pending;
      pending = [];
      if (batch.length) apply(batch);
    };

    const catchUp = async () => {
      // pull what we missed over REST; a 410 means our cursor is gone: new snapshot
      let more = true;
      while (more && !stopped) {
        const st = qc.getQueryData<SyncState>(syncKey(ws));
        if (!st) return;
        try {
          const page = await api<SyncPage>(wsPath(ws, `/sync${qs({ since: st.cursor, limit: 500 })}`));
          if (page.changes?.length) apply(page.changes);
          more = page.more && !!page.changes?.length;
        } catch (e) {
          if (e instanceof ApiError && (e.status === 410 || e.code === 'conflict')) await startResync();
          return;
        }
      }
    };

    const connect = () => {
      if (stopped) return;
      const st = qc.getQueryData<SyncState>(syncKey(ws));
      const cursor = st?.cursor ?? '';
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const url = `${proto}//${location.host}/api/v1${wsPath(ws, `/ws${qs({ since: cursor })}`)}`;
      live.setConn('connecting');
      let sock: WebSocket;
      try {
        sock = new WebSocket(url);
      } catch {
        schedule();
        return;
      }
      socketRef.current = sock;
      sock.onopen = () => {
        attempt = 0;
        live.setConn('open');
        if (openRef.current) sock.send(JSON.stringify({ type: 'viewing', conversation_id: openRef.current }));
        pingTimer = setInterval(() => {
          if (sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify({ type: 'ping' }));
        }, 25000);
      };
      sock.onmessage = (ev) => {
        let frame: ServerFrame;
        try {
          frame = JSON.parse(String(ev.data)) as ServerFrame;
        } catch {
          return;
        }
        switch (frame.type) {
          case 'change':
            pending.push(frame);
            if (!flushTimer) flushTimer = setTimeout(flush, 16);
            break;
          case 'typing':
            if (frame.user_id !== userId) live.typing(frame.conversation_id, frame.user_id, frame.state === 'on');
            break;
          case 'viewers':
            live.viewers(frame.conversation_id, frame.user_ids ?? []);
            break;
          case 'presence':
            live.presence(frame.user_id, frame.status);
            break;
          case 'resync':
            flush();
            void startResync();
            break;
          case 'hello': {
            const viewers: Record<string, string[]> = {};
            for (const [c, us] of Object.entries(frame.viewers ?? {})) viewers[c] = us ?? [];
            live.hello(frame.presence ?? {}, viewers);
            break;
          }
          default:
            break;
        }
      };
      sock.onclose = (ev) => {
        if (pingTimer) clearInterval(pingTimer);
        pingTimer = null;
        flush();
        if (socketRef.current === sock) socketRef.current = null;
        if (stopped) return;
        live.setConn('offline');
        if (ev.code === 4002) {
          // resync: new snapshot first, then reconnect with its cursor
          void startResync().finally(() => {
            attempt = 0;
            schedule();
          });
          return;
        }
        // 4000 slow consumer, 4001 restart, 1012, 1011, 1013, network: resume from our cursor
        const after = resyncing ?? Promise.resolve();
        void after.then(catchUp).finally(schedule);
      };
    };

    const schedule = () => {
      if (stopped) return;
      const delay = backoff(attempt++);
      timer = setTimeout(connect, delay);
    };

    const onPageShow = (e: PageTransitionEvent) => {
      if (e.persisted) void resync();
    };
    const onOnline = () => {
      if (!socketRef.current) {
        if (timer) clearTimeout(timer);
        attempt = 0;
        connect();
      }
    };
    window.addEventListener('pageshow', onPageShow);
    window.addEventListener('online', onOnline);
    connect();
    return () => {
      stopped = true;
      window.removeEventListener('pageshow', onPageShow);
      window.removeEventListener('online', onOnline);
      if (timer) clearTimeout(timer);
      if (flushTimer) clearTimeout(flushTimer);
      if (pingTimer) clearInterval(pingTimer);
      socketRef.current?.close(1000);
      socketRef.current = null;
    };
  }, [ready, qc, ws, userId, apply, live, resync]);

  const send = useCallback((frame: Record<string, unknown>) => {
    const s = socketRef.current;
    if (s && s.readyState === WebSocket.OPEN) s.send(JSON.stringify(frame));
  }, []);

  const setOpenConversation = useCallback(
    (id: string | null) => {
      if (openRef.current === id) return;
      openRef.current = id;
      send({ type: 'viewing', conversation_id: id ?? '' });
    },
    [send],
  );

  const markRead = useCallback(
    (conversationId: string) => {
      const st = qc.getQueryData<SyncState>(syncKey(ws));
      if (st) qc.setQueryData(syncKey(ws), markReadLocal(st, conversationId, new Date().toISOString()));
      api(wsPath(ws, `/conversations/${conversationId}/read`), { method: 'POST' }).catch(() => undefined);
    },
    [qc, ws],
  );

  const onRemoved = useCallback((fn: (ids: string[]) => void) => {
    removedListeners.current.add(fn);
    return () => {
      removedListeners.current.delete(fn);
    };
  }, []);

  const value = useMemo<SyncApi>(
    () => ({ ws, userId, live, send, setOpenConversation, onRemoved, markRead, resync }),
    [ws, userId, live, send, setOpenConversation, onRemoved, markRead, resync],
  );

  if (snapshot.isError && !snapshot.data) {
    return (
      <div className="center-screen" role="alert">
        <p>{snapshot.error instanceof Error ? snapshot.error.message : 'Error'}</p>
        <button type="button" className="btn" onClick={() => void snapshot.refetch()}>
          ↻
        </button>
      </div>
    );
  }
  if (!snapshot.data) return <div className="center-screen" aria-busy="true"><span className="spinner" /></div>;
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

/** The sync API when inside a workspace, else null (the profile page also renders without one). */
export function useOptionalSync(): SyncApi | null {
  return useContext(Ctx);
}

export function useSync(): SyncApi {
  const v = useContext(Ctx);
  if (!v) throw new Error('useSync outside SyncProvider');
  return v;
}

export function useSyncState<T>(select: (s: SyncState) => T): T {
  const { ws } = useSync();
  const qc = useQueryClient();
  const q = useQuery({
    queryKey: syncKey(ws),
    queryFn: () => qc.getQueryData<SyncState>(syncKey(ws)) as SyncState,
    staleTime: Infinity,
    gcTime: 0,
    select,
    enabled: false,
  });
  return q.data as T;
}

export function useLive(): LiveSnapshot {
  const { live } = useSync();
  return useSyncExternalStore(live.subscribe, live.get, live.get);
}
