import type { Change, Conversation, Message, Snapshot } from '../src/api/types';

let seq = 0;
export function conv(id: string, over: Partial<Conversation> = {}): Conversation {
  return {
    id,
    number: ++seq,
    channel_id: 'ch1',
    channel_kind: 'telegram',
    contact: { id: `ct-${id}`, name: `Contact ${id}`, avatar_url: '' },
    status: 'open',
    assignee_id: null,
    team_id: null,
    labels: [],
    is_group: false,
    title: '',
    last_message: { preview: 'hi', at: '2026-01-01T10:00:00Z', direction: 'inbound' },
    last_inbound_at: '2026-01-01T10:00:00Z',
    unread_count: 0,
    created_at: '2026-01-01T09:00:00Z',
    updated_at: '2026-01-01T10:00:00Z',
    ...over,
  };
}

export function msg(id: string, conversationId: string, over: Partial<Message> = {}): Message {
  return {
    id,
    conversation_id: conversationId,
    direction: 'inbound',
    sender: { type: 'contact', id: 'c', name: 'Ann' },
    kind: 'text',
    text: `text ${id}`,
    attachments: [],
    location: null,
    reply_to_id: null,
    reactions: [],
    status: 'received',
    error: '',
    external_id: '',
    private: false,
    edited_at: null,
    deleted_at: null,
    created_at: new Date().toISOString(),
    ...over,
  };
}

export function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return { cursor: '10', conversations: [], labels: [], members: [], channels: [], teams: [], ...over };
}

export function change(seqNo: number, entity: string, op: 'upsert' | 'delete', id: string, data: unknown): Change {
  return { seq: seqNo, entity, op, id, data };
}
