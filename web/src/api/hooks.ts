import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, qs, wsPath } from './client';
import type { Contact, Conversation, Message, Page, Participant } from './types';
import type { QueueFilters, View } from '../sync/queue';
import { VIEWS } from '../sync/queue';
import { messagesKey, syncKey, useSync } from '../sync/SyncProvider';
import { mergeConversation, rememberMessages, type SyncState } from '../sync/reducer';
import { upsertMessage, type MessagePages } from '../sync/messages';

export function useConversationList(view: View, f: QueueFilters) {
  const { ws } = useSync();
  const qc = useQueryClient();
  return useInfiniteQuery({
    queryKey: ['conversations', ws, view, f],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam, signal }) => {
      const page = await api<Page<Conversation>>(
        wsPath(ws, `/conversations${qs({ view, ...f, limit: 50, cursor: pageParam })}`),
        { signal },
      );
      // REST rows carry this user's unread counts: fold them into the live state
      const st = qc.getQueryData<SyncState>(syncKey(ws));
      if (st) {
        let next = st;
        for (const c of page.items ?? []) next = mergeConversation(next, c);
        if (next !== st) qc.setQueryData(syncKey(ws), next);
      }
      return page;
    },
    getNextPageParam: (last) => last.next_cursor || undefined,
    staleTime: 30_000,
  });
}

export function useViewCounts() {
  const { ws } = useSync();
  return useQuery({
    queryKey: ['counts', ws],
    queryFn: async ({ signal }) => {
      const entries = await Promise.all(
        VIEWS.map(async (v) => {
          try {
            const p = await api<Page<Conversation>>(wsPath(ws, `/conversations${qs({ view: v, limit: 1 })}`), { signal });
            return [v, p.total ?? (p.items?.length ?? 0)] as const;
          } catch {
            return [v, null] as const;
          }
        }),
      );
      return Object.fromEntries(entries) as Record<View, number | null>;
    },
    staleTime: 10_000,
  });
}

export function useMessages(conversationId: string) {
  const { ws } = useSync();
  const qc = useQueryClient();
  return useInfiniteQuery({
    queryKey: messagesKey(ws, conversationId),
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam, signal }) => {
      const page = await api<Page<Message>>(
        wsPath(ws, `/conversations/${conversationId}/messages${qs({ before: pageParam, limit: 50 })}`),
        { signal },
      );
      const st = qc.getQueryData<SyncState>(syncKey(ws));
      if (st) qc.setQueryData(syncKey(ws), rememberMessages(st, (page.items ?? []).map((m) => m.id)));
      return page;
    },
    getNextPageParam: (last) => last.next_cursor || undefined,
    staleTime: Infinity,
    gcTime: 5 * 60_000,
  });
}

export function useConversation(id: string | undefined) {
  const { ws } = useSync();
  const qc = useQueryClient();
  return useQuery({
    queryKey: ['conversation', ws, id],
    enabled: !!id,
    queryFn: async () => {
      const c = await api<Conversation>(wsPath(ws, `/conversations/${id}`));
      const st = qc.getQueryData<SyncState>(syncKey(ws));
      if (st) qc.setQueryData(syncKey(ws), mergeConversation(st, c));
      return c;
    },
    staleTime: 60_000,
  });
}

export function useContact(id: string | undefined) {
  const { ws } = useSync();
  return useQuery({
    queryKey: ['contact', ws, id],
    enabled: !!id,
    queryFn: () => api<Contact>(wsPath(ws, `/contacts/${id}`)),
    staleTime: 30_000,
  });
}

export function useContactConversations(id: string | undefined) {
  const { ws } = useSync();
  return useQuery({
    queryKey: ['contact', ws, id, 'conversations'],
    enabled: !!id,
    queryFn: async () => {
      const r = await api<Page<Conversation>>(wsPath(ws, `/contacts/${id}/conversations`));
      return r.items ?? [];
    },
    staleTime: 30_000,
  });
}

export function useParticipants(id: string | undefined, enabled: boolean) {
  const { ws } = useSync();
  return useQuery({
    queryKey: ['participants', ws, id],
    enabled: !!id && enabled,
    queryFn: async () => {
      const r = await api<Page<Participant>>(wsPath(ws, `/conversations/${id}/participants`));
      return r.items ?? [];
    },
    staleTime: 60_000,
  });
}

/** Applies a conversation returned by a mutation at once (the change frame follows). */
export function useConversationMutation() {
  const { ws } = useSync();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: async (v: { id: string; path?: string; method?: string; body?: unknown }) =>
      api<Conversation | undefined>(wsPath(ws, `/conversations/${v.id}${v.path ?? ''}`), {
        method: v.method ?? 'PATCH',
        body: v.body,
      }),
    // optimistic: the queue and the toolbar change at once; an error puts the old copy back
    onMutate: (v) => {
      const st = qc.getQueryData<SyncState>(syncKey(ws));
      const old = st?.conversations[v.id];
      if (!st || !old) return { old: undefined };
      let next: Conversation = old;
      const method = v.method ?? 'PATCH';
      if (method === 'PATCH' && !v.path && v.body && typeof v.body === 'object') {
        next = { ...old, ...(v.body as Partial<Conversation>) };
      } else if (v.path === '/labels' && method === 'POST') {
        const ids = (v.body as { label_ids?: string[] })?.label_ids ?? [];
        next = { ...old, labels: [...new Set([...(old.labels ?? []), ...ids])] };
      } else if (v.path?.startsWith('/labels/') && method === 'DELETE') {
        const id = v.path.slice('/labels/'.length);
        next = { ...old, labels: (old.labels ?? []).filter((l) => l !== id) };
      }
      if (next !== old) qc.setQueryData(syncKey(ws), { ...st, conversations: { ...st.conversations, [v.id]: next } });
      return { old };
    },
    onError: (_e, v, ctx) => {
      const st = qc.getQueryData<SyncState>(syncKey(ws));
      if (st && ctx?.old) qc.setQueryData(syncKey(ws), { ...st, conversations: { ...st.conversations, [v.id]: ctx.old } });
    },
    onSuccess: (conv) => {
      if (conv && typeof conv === 'object' && 'id' in conv) {
        const st = qc.getQueryData<SyncState>(syncKey(ws));
        if (st) {
          const old = st.conversations[conv.id];
          qc.setQueryData(syncKey(ws), mergeConversation(st, { ...conv, unread_count: old?.unread_count ?? conv.unread_count }));
        }
        qc.setQueryData(['conversation', ws, conv.id], conv);
      }
      void qc.invalidateQueries({ queryKey: ['counts', ws] });
    },
  });
}

export function useSendMessage(conversationId: string) {
  const { ws } = useSync();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: {
      text?: string;
      attachment_ids?: string[];
      private?: boolean;
      reply_to_id?: string | null;
      template?: { name: string; language: string; params: string[] };
    }) => api<Message>(wsPath(ws, `/conversations/${conversationId}/messages`), { body }),
    onSuccess: (msg) => {
      if (msg?.id) qc.setQueryData<MessagePages>(messagesKey(ws, conversationId), (d) => upsertMessage(d, msg));
    },
  });
}
