// Queue views and filters, evaluated on the client so live changes place
// conversations in (or out of) the open queue without a refetch.
import type { Conversation } from '../api/types';

export const VIEWS = ['mine', 'unassigned', 'open', 'all', 'closed', 'spam'] as const;
export type View = (typeof VIEWS)[number];

export interface QueueFilters {
  channel?: string;
  label?: string;
  assignee?: string;
  team?: string;
  q?: string;
}

export function isView(v: string | undefined | null): v is View {
  return !!v && (VIEWS as readonly string[]).includes(v);
}

export function matchesView(c: Conversation, view: View, me: string): boolean {
  const s = c.status;
  switch (view) {
    case 'mine':
      return c.assignee_id === me && s !== 'resolved' && s !== 'spam';
    case 'unassigned':
      return !c.assignee_id && (s === 'open' || s === 'pending');
    case 'open':
      return s === 'open' || s === 'pending';
    case 'all':
      return s !== 'spam';
    case 'closed':
      return s === 'resolved';
    case 'spam':
      return s === 'spam';
  }
}

export function matchesFilters(c: Conversation, f: QueueFilters): boolean {
  if (f.channel && c.channel_id !== f.channel) return false;
  if (f.label && !(c.labels ?? []).includes(f.label)) return false;
  if (f.assignee && c.assignee_id !== f.assignee) return false;
  if (f.team && c.team_id !== f.team) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    const hay = `${c.contact?.name ?? ''} ${c.title ?? ''} ${c.last_message?.preview ?? ''} #${c.number}`.toLowerCase();
    if (!hay.includes(q)) return false;
  }
  return true;
}

export function activityAt(c: Conversation): number {
  const t = Date.parse(c.last_message?.at ?? c.updated_at ?? c.created_at);
  return Number.isFinite(t) ? t : 0;
}

export function compareActivity(a: Conversation, b: Conversation): number {
  const d = activityAt(b) - activityAt(a);
  if (d !== 0) return d;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function newer(a: Conversation, b: Conversation): Conversation {
  const ta = Date.parse(a.updated_at);
  const tb = Date.parse(b.updated_at);
  return tb > ta ? b : a;
}

/**
 * Builds the visible queue: server pages (authoritative membership for what was fetched)
 * overlaid with live conversations from the sync state, minus tombstones, re-filtered
 * client-side, newest activity first.
 */
export function buildQueue(
  serverItems: Conversation[],
  live: Record<string, Conversation>,
  tombstones: Record<string, true>,
  view: View,
  filters: QueueFilters,
  me: string,
): Conversation[] {
  const out = new Map<string, Conversation>();
  for (const c of serverItems) {
    if (tombstones[c.id]) continue;
    const l = live[c.id];
    // live copy carries our unread count; prefer whichever is more recent
    const merged = l ? { ...newer(c, l), unread_count: l.unread_count } : c;
    out.set(c.id, merged);
  }
  // Conversations that became part of this view live (new activity, reassignment).
  // Only when not searching: the server's text search is richer than ours.
  if (!filters.q) {
    for (const l of Object.values(live)) {
      if (!out.has(l.id) && !tombstones[l.id]) out.set(l.id, l);
    }
  }
  const list = [...out.values()].filter((c) => matchesView(c, view, me) && matchesFilters(c, filters));
  list.sort(compareActivity);
  return list;
}

/**
 * Keeps the order the user is looking at stable while the pointer is over the list:
 * items keep their previous positions, new ones are held back (returned as `pending`).
 */
export function freezeOrder(
  current: Conversation[],
  previousOrder: string[],
): { items: Conversation[]; pending: number } {
  const byId = new Map(current.map((c) => [c.id, c]));
  const items: Conversation[] = [];
  for (const id of previousOrder) {
    const c = byId.get(id);
    if (c) {
      items.push(c);
      byId.delete(id);
    }
  }
  return { items, pending: byId.size };
}
