import { describe, expect, it } from 'vitest';
import { QueryClient } from '@tanstack/react-query';
import { applyToCache, messagesKey, syncKey } from '../src/sync/SyncProvider';
import { fromSnapshot, type SyncState } from '../src/sync/reducer';
import { flattenMessages, type MessagePages } from '../src/sync/messages';
import { change, conv, msg, snapshot } from './fixtures';

function setup() {
  const qc = new QueryClient();
  qc.setQueryData(syncKey('w'), fromSnapshot(snapshot({ conversations: [conv('a'), conv('b')] }), 'u1'));
  qc.setQueryData<MessagePages>(messagesKey('w', 'a'), { pages: [{ items: [msg('m1', 'a')], next_cursor: null }], pageParams: [undefined] });
  return qc;
}

describe('change frames into the query cache', () => {
  it('appends new messages to loaded histories and skips unloaded ones', () => {
    const qc = setup();
    applyToCache(qc, 'w', [change(11, 'message', 'upsert', 'm2', msg('m2', 'a')), change(12, 'message', 'upsert', 'x', msg('x', 'b'))], null);
    expect(flattenMessages(qc.getQueryData(messagesKey('w', 'a'))).map((m) => m.id)).toEqual(['m1', 'm2']);
    expect(qc.getQueryData(messagesKey('w', 'b'))).toBeUndefined();
    const st = qc.getQueryData<SyncState>(syncKey('w'));
    expect(st?.conversations.b?.unread_count).toBe(1);
    expect(st?.cursor).toBe('12');
  });

  it('a message tombstone removes it; a conversation tombstone is reported', () => {
    const qc = setup();
    const r = applyToCache(qc, 'w', [change(11, 'message', 'delete', 'm1', null), change(12, 'conversation', 'delete', 'a', null)], 'a');
    expect(flattenMessages(qc.getQueryData(messagesKey('w', 'a')))).toEqual([]);
    expect(r.removed).toEqual(['a']);
    expect(qc.getQueryData<SyncState>(syncKey('w'))?.conversations.a).toBeUndefined();
  });

  it('ignores duplicates of already applied changes', () => {
    const qc = setup();
    applyToCache(qc, 'w', [change(11, 'message', 'upsert', 'm2', msg('m2', 'b'))], null);
    const before = qc.getQueryData<SyncState>(syncKey('w'));
    applyToCache(qc, 'w', [change(11, 'message', 'upsert', 'm2', msg('m2', 'b'))], null);
    expect(qc.getQueryData<SyncState>(syncKey('w'))).toBe(before);
    expect(before?.conversations.b?.unread_count).toBe(1);
  });
});
