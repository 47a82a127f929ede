// Pure sync reducer: a snapshot plus change-log deltas (upserts and tombstones)
// produce the client's view of a workspace. No I/O, no React: easy to test.
import type {
  Change, Channel, Contact, Conversation, Label, Member, Message, ReadState, Snapshot, Team,
} from '../api/types';

export interface SyncState {
  /** opaque cursor of the last applied change (decimal seq) */
  cursor: string;
  seq: number;
  userId: string;
  /** ms epoch when the snapshot was taken (client clock) */
  snapshotAt: number;
  conversations: Record<string, Conversation>;
  labels: Record<string, Label>;
  members: Record<string, Member>;
  channels: Record<string, Channel>;
  teams: Record<string, Team>;
  contacts: Record<string, Contact>;
  /** ids of conversations deleted since the snapshot: list pages fetched earlier must hide them */
  tombstones: Record<string, true>;
  /** last_read_at per conversation for the current user */
  lastRead: Record<string, string>;
  /** message ids already seen (bounded), so a re-upsert (status, reaction, edit) is not counted unread */
  known: Record<string, number>;
  knownCount: number;
}

export interface MessageEffect {
  op: 'upsert' | 'delete';
  id: string;
  conversationId: string | null;
  message: Message | null;
}

export interface ApplyResult {
  state: SyncState;
  messages: MessageEffect[];
  /** conversations removed by tombstones in this batch (clear a stale selection) */
  removedConversations: string[];
  /** contacts upserted or deleted in this batch */
  contactsChanged: string[];
  changed: boolean;
}

export interface ApplyContext {
  /** the conversation the user has open now: new messages there are read, not unread */
  openConversationId: string | null;
}

const KNOWN_LIMIT = 5000;
const UNREAD_SLACK_MS = 5 * 60 * 1000;

function byId<T extends { id: string }>(items: T[] | null | undefined): Record<string, T> {
  const out: Record<string, T> = {};
  for (const it of items ?? []) out[it.id] = it;
  return out;
}

export function parseSeq(cursor: string | null | undefined): number {
  const n = Number(cursor);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

export function fromSnapshot(snap: Snapshot, userId: string, now: number = Date.now()): SyncState {
  const seq = parseSeq(snap.cursor);
  return {
    cursor: snap.cursor ?? String(seq),
    seq,
    userId,
    snapshotAt: now,
    conversations: byId(snap.conversations),
    labels: byId(snap.labels),
    members: byId(snap.members),
    channels: byId(snap.channels),
    teams: byId(snap.teams ?? []),
    contacts: {},
    tombstones: {},
    lastRead: {},
    known: {},
    knownCount: 0,
  };
}

function remember(state: SyncState, id: string): void {
  if (state.known[id] !== undefined) return;
  state.known[id] = state.knownCount++;
  if (Object.keys(state.known).length > KNOWN_LIMIT) {
    const cutoff = state.knownCount - KNOWN_LIMIT / 2;
    const next: Record<string, number> = {};
    for (const [k, v] of Object.entries(state.known)) if (v >= cutoff) next[k] = v;
    state.known = next;
  }
}

function upsertMap<T>(map: Record<string, T>, id: string, value: T): Record<string, T> {
  return { ...map, [id]: value };
}

function deleteFromMap<T>(map: Record<string, T>, id: string): Record<string, T> {
  if (!(id in map)) return map;
  const next = { ...map };
  delete next[id];
  return next;
}

/** Marks messages as known (e.g. after loading a history page) so later upserts of them never count as unread. */
export function rememberMessages(state: SyncState, ids: string[]): SyncState {
  const next: SyncState = { ...state, known: { ...state.known } };
  for (const id of ids) remember(next, id);
  return next;
}

/**
 * Applies a batch of changes in seq order. Changes at or below the current seq
 * are duplicates (a resumed stream may repeat) and are skipped.
 */
export function applyChanges(prev: SyncState, changes: Change[], ctx: ApplyContext): ApplyResult {
  const state: SyncState = { ...prev, known: { ...prev.known } };
  const messages: MessageEffect[] = [];
  const removedConversations: string[] = [];
  const contactsChanged: string[] = [];
  let changed = false;
  const sorted = [...changes].sort((a, b) => a.seq - b.seq);
  for (const ch of sorted) {
    if (ch.seq <= state.seq) continue;
    state.seq = ch.seq;
    state.cursor = String(ch.seq);
    changed = true;
    const del = ch.op === 'delete';
    switch (ch.entity) {
      case 'conversation': {
        if (del) {
          state.conversations = deleteFromMap(state.conversations, ch.id);
          state.tombstones = { ...state.tombstones, [ch.id]: true };
          removedConversations.push(ch.id);
        } else {
          const data = ch.data as Conversation;
          const old = state.conversations[ch.id];
          // change data is user-neutral (unread_count 0): keep our own count
          const conv: Conversation = { ...data, unread_count: old?.unread_count ?? 0 };
          state.conversations = upsertMap(state.conversations, ch.id, conv);
          if (state.tombstones[ch.id]) state.tombstones = deleteFromMap(state.tombstones, ch.id);
        }
        break;
      }
      case 'message': {
        if (del) {
          const data = ch.data as Partial<Message> | null;
          messages.push({ op: 'delete', id: ch.id, conversationId: data?.conversation_id ?? null, message: null });
          break;
        }
        const msg = ch.data as Message;
        const isNew = state.known[msg.id] === undefined;
        remember(state, msg.id);
        messages.push({ op: 'upsert', id: msg.id, conversationId: msg.conversation_id, message: msg });
        const conv = state.conversations[msg.conversation_id];
        if (
          isNew && conv && msg.direction === 'inbound' && !msg.private &&
          msg.conversation_id !== ctx.openConversationId && isAfterRead(state, msg)
        ) {
          state.conversations = upsertMap(state.conversations, conv.id, { ...conv, unread_count: conv.unread_count + 1 });
        }
        break;
      }
      case 'read_state': {
        const rs = ch.data as ReadState | null;
        if (!rs || (rs.user_id && rs.user_id !== state.userId)) break;
        state.lastRead = { ...state.lastRead, [rs.conversation_id]: rs.last_read_at };
        const conv = state.conversations[rs.conversation_id];
        if (conv) {
          state.conversations = upsertMap(state.conversations, conv.id, { ...conv, unread_count: rs.unread_count });
        }
        break;
      }
      case 'label':
        state.labels = del ? deleteFromMap(state.labels, ch.id) : upsertMap(state.labels, ch.id, ch.data as Label);
        break;
      case 'member':
        state.members = del ? deleteFromMap(state.members, ch.id) : upsertMap(state.members, ch.id, ch.data as Member);
        break;
      case 'team':
        state.teams = del ? deleteFromMap(state.teams, ch.id) : upsertMap(state.teams, ch.id, ch.data as Team);
        break;
      case 'channel':
        state.channels = del ? deleteFromMap(state.channels, ch.id) : upsertMap(state.channels, ch.id, ch.data as Channel);
        break;
      case 'contact': {
        contactsChanged.push(ch.id);
        if (del) {
          state.contacts = deleteFromMap(state.contacts, ch.id);
          break;
        }
        const c = ch.data as Contact;
        state.contacts = upsertMap(state.contacts, ch.id, c);
        // keep the contact summary embedded in conversations fresh
        let convs = state.conversations;
        for (const conv of Object.values(convs)) {
          if (conv.contact?.id === c.id && (conv.contact.name !== c.name || conv.contact.avatar_url !== c.avatar_url)) {
            if (convs === state.conversations) convs = { ...convs };
            convs[conv.id] = { ...conv, contact: { id: c.id, name: c.name, avatar_url: c.avatar_url } };
          }
        }
        state.conversations = convs;
        break;
      }
      default:
        break; // unknown entities are ignored: newer servers may add some
    }
  }
  return { state: changed ? state : prev, messages, removedConversations, contactsChanged, changed };
}

function isAfterRead(state: SyncState, msg: Message): boolean {
  const at = Date.parse(msg.created_at);
  if (!Number.isFinite(at)) return true;
  const lr = state.lastRead[msg.conversation_id];
  if (lr && at <= Date.parse(lr)) return false;
  // edits of old messages (never seen by this tab) must not count as new
  return at >= state.snapshotAt - UNREAD_SLACK_MS;
}

/** Marks a conversation read locally (optimistic, before the server's read_state arrives). */
export function markReadLocal(state: SyncState, conversationId: string, at: string): SyncState {
  const conv = state.conversations[conversationId];
  const lastRead = { ...state.lastRead, [conversationId]: at };
  if (!conv || conv.unread_count === 0) return { ...state, lastRead };
  return {
    ...state,
    lastRead,
    conversations: { ...state.conversations, [conversationId]: { ...conv, unread_count: 0 } },
  };
}

/** Merges a conversation fetched by REST (it carries this user's unread_count). */
export function mergeConversation(state: SyncState, conv: Conversation): SyncState {
  if (state.tombstones[conv.id]) return state;
  const old = state.conversations[conv.id];
  if (old && Date.parse(old.updated_at) > Date.parse(conv.updated_at)) return state;
  return { ...state, conversations: { ...state.conversations, [conv.id]: conv } };
}
