// Pure helpers over the infinite-query cache of a conversation's history.
// pages[0] is the newest page; each page's items are oldest first (as the API returns them).
import type { Message, Page } from '../api/types';

export interface MessagePages {
  pages: Page<Message>[];
  pageParams: unknown[];
}

export function flattenMessages(data: MessagePages | undefined): Message[] {
  if (!data) return [];
  const out: Message[] = [];
  const seen = new Set<string>();
  for (let i = data.pages.length - 1; i >= 0; i--) {
    for (const m of data.pages[i]?.items ?? []) {
      if (seen.has(m.id)) continue;
      seen.add(m.id);
      out.push(m);
    }
  }
  return out;
}

const rank: Record<string, number> = { queued: 1, sent: 2, delivered: 3, read: 4, failed: 5 };

/** Statuses only move forward (a late "sent" never overwrites "read"), except a retry re-queues a failed one. */
function mergeMessage(old: Message, next: Message): Message {
  const ro = rank[old.status] ?? 0;
  const rn = rank[next.status] ?? 0;
  if (rn < ro && !(old.status === 'failed' && next.status === 'queued')) {
    return { ...next, status: old.status, error: old.error };
  }
  return next;
}

export function upsertMessage(data: MessagePages | undefined, msg: Message): MessagePages {
  if (!data || data.pages.length === 0) {
    return { pages: [{ items: [msg], next_cursor: null }], pageParams: [undefined] };
  }
  for (let p = 0; p < data.pages.length; p++) {
    const items = data.pages[p]?.items ?? [];
    const idx = items.findIndex((m) => m.id === msg.id);
    if (idx >= 0) {
      const nextItems = items.slice();
      nextItems[idx] = mergeMessage(items[idx] as Message, msg);
      const pages = data.pages.slice();
      pages[p] = { ...(data.pages[p] as Page<Message>), items: nextItems };
      return { ...data, pages };
    }
  }
  // new: insert into the newest page in created_at order (usually the end)
  const first = data.pages[0] as Page<Message>;
  const items = (first.items ?? []).slice();
  let at = items.length;
  const t = Date.parse(msg.created_at);
  while (at > 0 && Date.parse((items[at - 1] as Message).created_at) > t) at--;
  items.splice(at, 0, msg);
  const pages = data.pages.slice();
  pages[0] = { ...first, items };
  return { ...data, pages };
}

export function removeMessage(data: MessagePages | undefined, id: string): MessagePages | undefined {
  if (!data) return data;
  let touched = false;
  const pages = data.pages.map((p) => {
    const items = p.items ?? [];
    if (!items.some((m) => m.id === id)) return p;
    touched = true;
    return { ...p, items: items.filter((m) => m.id !== id) };
  });
  return touched ? { ...data, pages } : data;
}
