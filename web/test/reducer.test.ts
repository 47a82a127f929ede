import { describe, expect, it } from 'vitest';
import { applyChanges, fromSnapshot, markReadLocal, mergeConversation, rememberMessages } from '../src/sync/reducer';
import { change, conv, msg, snapshot } from './fixtures';

const ctx = { openConversationId: null };

describe('sync reducer', () => {
  it('builds state from a snapshot', () => {
    const s = fromSnapshot(snapshot({ cursor: '42', conversations: [conv('a', { unread_count: 3 })], labels: [{ id: 'l1', name: 'VIP', color: '#f00', description: '', created_at: '' }] }), 'u1');
    expect(s.seq).toBe(42);
    expect(s.cursor).toBe('42');
    expect(s.conversations.a?.unread_count).toBe(3);
    expect(s.labels.l1?.name).toBe('VIP');
  });

  it('applies upserts, advances the cursor and skips duplicates', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a')] }), 'u1');
    const r1 = applyChanges(s0, [change(11, 'conversation', 'upsert', 'b', conv('b'))], ctx);
    expect(r1.state.cursor).toBe('11');
    expect(Object.keys(r1.state.conversations).sort()).toEqual(['a', 'b']);
    // a resumed stream repeating seq 11 changes nothing
    const r2 = applyChanges(r1.state, [change(11, 'conversation', 'upsert', 'b', conv('b', { status: 'spam' }))], ctx);
    expect(r2.changed).toBe(false);
    expect(r2.state.conversations.b?.status).toBe('open');
  });

  it('applies a batch in seq order whatever the arrival order', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a')] }), 'u1');
    const r = applyChanges(
      s0,
      [change(13, 'conversation', 'upsert', 'a', conv('a', { status: 'resolved' })), change(12, 'conversation', 'upsert', 'a', conv('a', { status: 'pending' }))],
      ctx,
    );
    expect(r.state.conversations.a?.status).toBe('resolved');
    expect(r.state.seq).toBe(13);
  });

  it('keeps the local unread count: conversation change data is user-neutral', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a', { unread_count: 4 })] }), 'u1');
    const r = applyChanges(s0, [change(11, 'conversation', 'upsert', 'a', conv('a', { unread_count: 0, status: 'pending' }))], ctx);
    expect(r.state.conversations.a?.unread_count).toBe(4);
    expect(r.state.conversations.a?.status).toBe('pending');
  });

  it('counts new inbound non-private messages of conversations not open', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a'), conv('b')] }), 'u1');
    const r = applyChanges(
      s0,
      [
        change(11, 'message', 'upsert', 'm1', msg('m1', 'a')),
        change(12, 'message', 'upsert', 'm2', msg('m2', 'a', { private: true })),
        change(13, 'message', 'upsert', 'm3', msg('m3', 'a', { direction: 'outbound', status: 'queued' })),
        change(14, 'message', 'upsert', 'm4', msg('m4', 'b')),
      ],
      { openConversationId: 'b' },
    );
    expect(r.state.conversations.a?.unread_count).toBe(1);
    expect(r.state.conversations.b?.unread_count).toBe(0);
    expect(r.messages.map((m) => m.id)).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  it('does not count a re-upsert (status, reaction, edit) of a known message', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a')] }), 'u1');
    const r1 = applyChanges(s0, [change(11, 'message', 'upsert', 'm1', msg('m1', 'a'))], ctx);
    const r2 = applyChanges(r1.state, [change(12, 'message', 'upsert', 'm1', msg('m1', 'a', { reactions: [{ emoji: '👍', by: { type: 'agent', id: 'u2', name: 'B' } }] }))], ctx);
    expect(r2.state.conversations.a?.unread_count).toBe(1);
  });

  it('does not count edits of old messages loaded from history', () => {
    const s0 = rememberMessages(fromSnapshot(snapshot({ conversations: [conv('a')] }), 'u1'), ['old']);
    const r = applyChanges(s0, [change(11, 'message', 'upsert', 'old', msg('old', 'a', { edited_at: new Date().toISOString() }))], ctx);
    expect(r.state.conversations.a?.unread_count).toBe(0);
    // and an unknown message created long before the snapshot is not new either
    const r2 = applyChanges(r.state, [change(12, 'message', 'upsert', 'x', msg('x', 'a', { created_at: '2020-01-01T00:00:00Z' }))], ctx);
    expect(r2.state.conversations.a?.unread_count).toBe(0);
  });

  it('sets the unread count from read_state changes of the current user only', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a', { unread_count: 5 })] }), 'u1');
    const other = applyChanges(s0, [change(11, 'read_state', 'upsert', 'a:u2', { conversation_id: 'a', user_id: 'u2', last_read_at: new Date().toISOString(), unread_count: 0 })], ctx);
    expect(other.state.conversations.a?.unread_count).toBe(5);
    const mine = applyChanges(other.state, [change(12, 'read_state', 'upsert', 'a:u1', { conversation_id: 'a', user_id: 'u1', last_read_at: new Date().toISOString(), unread_count: 0 })], ctx);
    expect(mine.state.conversations.a?.unread_count).toBe(0);
    // messages at or before the read position are not unread
    const late = applyChanges(mine.state, [change(13, 'message', 'upsert', 'm9', msg('m9', 'a', { created_at: new Date(Date.now() - 60_000).toISOString() }))], ctx);
    expect(late.state.conversations.a?.unread_count).toBe(0);
  });

  it('tombstones remove items and report removed conversations', () => {
    const s0 = fromSnapshot(
      snapshot({
        conversations: [conv('a'), conv('b')],
        labels: [{ id: 'l1', name: 'x', color: '', description: '', created_at: '' }],
      }),
      'u1',
    );
    const r = applyChanges(
      s0,
      [change(11, 'conversation', 'delete', 'a', null), change(12, 'label', 'delete', 'l1', null), change(13, 'message', 'delete', 'm1', { conversation_id: 'b' })],
      ctx,
    );
    expect(r.state.conversations.a).toBeUndefined();
    expect(r.state.tombstones.a).toBe(true);
    expect(r.state.labels.l1).toBeUndefined();
    expect(r.removedConversations).toEqual(['a']);
    expect(r.messages).toEqual([{ op: 'delete', id: 'm1', conversationId: 'b', message: null }]);
  });

  it('a resync (new snapshot) replaces everything, including tombstones', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a')] }), 'u1');
    const r = applyChanges(s0, [change(11, 'conversation', 'delete', 'a', null)], ctx);
    const fresh = fromSnapshot(snapshot({ cursor: '99', conversations: [conv('c')] }), 'u1');
    expect(fresh.tombstones).toEqual({});
    expect(Object.keys(fresh.conversations)).toEqual(['c']);
    expect(fresh.seq).toBeGreaterThan(r.state.seq);
  });

  it('contact upserts refresh the embedded contact summary', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a')] }), 'u1');
    const r = applyChanges(
      s0,
      [change(11, 'contact', 'upsert', 'ct-a', { id: 'ct-a', name: 'Renamed', avatar_url: '', emails: [], phones: [], identities: [], tags: [], attributes: {}, blocked: false, created_at: '' })],
      ctx,
    );
    expect(r.state.conversations.a?.contact.name).toBe('Renamed');
    expect(r.contactsChanged).toEqual(['ct-a']);
  });

  it('local read and REST merges', () => {
    const s0 = fromSnapshot(snapshot({ conversations: [conv('a', { unread_count: 2 })] }), 'u1');
    const s1 = markReadLocal(s0, 'a', new Date().toISOString());
    expect(s1.conversations.a?.unread_count).toBe(0);
    // an older REST copy never overwrites a newer live one
    const s2 = mergeConversation(s1, conv('a', { updated_at: '2000-01-01T00:00:00Z', status: 'spam' }));
    expect(s2.conversations.a?.status).toBe('open');
    // a deleted conversation is not resurrected by a stale list page
    const s3 = applyChanges(s2, [change(11, 'conversation', 'delete', 'a', null)], ctx).state;
    expect(mergeConversation(s3, conv('a')).conversations.a).toBeUndefined();
  });
});
