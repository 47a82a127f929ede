import { describe, expect, it } from 'vitest';
import { mentionQuery } from '../src/lib/rules';
import { buildQueue, freezeOrder, matchesView } from '../src/sync/queue';
import { flattenMessages, removeMessage, upsertMessage } from '../src/sync/messages';
import { conv, msg } from './fixtures';

describe('queue', () => {
  it('views follow the status and assignee rules', () => {
    const me = 'u1';
    const c = (o: Parameters<typeof conv>[1]) => conv('x', o);
    expect(matchesView(c({ assignee_id: 'u1' }), 'mine', me)).toBe(true);
    expect(matchesView(c({ assignee_id: 'u1', status: 'resolved' }), 'mine', me)).toBe(false);
    expect(matchesView(c({}), 'unassigned', me)).toBe(true);
    expect(matchesView(c({ status: 'snoozed' }), 'unassigned', me)).toBe(false);
    expect(matchesView(c({ status: 'spam' }), 'all', me)).toBe(false);
    expect(matchesView(c({ status: 'spam' }), 'spam', me)).toBe(true);
    expect(matchesView(c({ status: 'resolved' }), 'closed', me)).toBe(true);
  });

  it('merges live conversations, drops tombstones, sorts by activity', () => {
    const server = [conv('a', { last_message: { preview: '', at: '2026-01-01T10:00:00Z', direction: 'inbound' } }), conv('gone')];
    const live = {
      a: conv('a', { unread_count: 2, last_message: { preview: 'new', at: '2026-01-01T12:00:00Z', direction: 'inbound' }, updated_at: '2026-01-01T12:00:00Z' }),
      b: conv('b', { last_message: { preview: '', at: '2026-01-01T11:00:00Z', direction: 'inbound' } }),
      r: conv('r', { status: 'resolved' }),
    };
    const q = buildQueue(server, live, { gone: true }, 'open', {}, 'u1');
    expect(q.map((c) => c.id)).toEqual(['a', 'b']);
    expect(q[0]?.unread_count).toBe(2);
    expect(q[0]?.last_message?.preview).toBe('new');
  });

  it('filters by channel and label', () => {
    const live = { a: conv('a', { channel_id: 'x', labels: ['l'] }), b: conv('b', { channel_id: 'y' }) };
    expect(buildQueue([], live, {}, 'all', { channel: 'x' }, 'u').map((c) => c.id)).toEqual(['a']);
    expect(buildQueue([], live, {}, 'all', { label: 'l' }, 'u').map((c) => c.id)).toEqual(['a']);
  });

  it('freezes the order under the pointer and holds new rows back', () => {
    const r = freezeOrder([conv('n'), conv('b'), conv('a')], ['a', 'b']);
    expect(r.items.map((c) => c.id)).toEqual(['a', 'b']);
    expect(r.pending).toBe(1);
  });
});

describe('message pages', () => {
  const pages = {
    pages: [
      { items: [msg('m3', 'c', { created_at: '2026-01-01T10:03:00Z' }), msg('m4', 'c', { created_at: '2026-01-01T10:04:00Z' })], next_cursor: 'p2' },
      { items: [msg('m1', 'c', { created_at: '2026-01-01T10:01:00Z' }), msg('m2', 'c', { created_at: '2026-01-01T10:02:00Z' })], next_cursor: null },
    ],
    pageParams: [undefined, 'p2'],
  };
  it('flattens newest-page-first data into oldest-first order', () => {
    expect(flattenMessages(pages).map((m) => m.id)).toEqual(['m1', 'm2', 'm3', 'm4']);
  });
  it('appends new messages and updates existing ones in place', () => {
    const p1 = upsertMessage(pages, msg('m5', 'c', { created_at: '2026-01-01T10:05:00Z' }));
    expect(flattenMessages(p1).map((m) => m.id)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    const p2 = upsertMessage(p1, msg('m1', 'c', { text: 'edited', created_at: '2026-01-01T10:01:00Z' }));
    expect(flattenMessages(p2)[0]?.text).toBe('edited');
  });
  it('never moves a status backwards, except retrying a failed message', () => {
    const base = upsertMessage(undefined, msg('o', 'c', { direction: 'outbound', status: 'read' }));
    const late = upsertMessage(base, msg('o', 'c', { direction: 'outbound', status: 'sent' }));
    expect(flattenMessages(late)[0]?.status).toBe('read');
    const failed = upsertMessage(undefined, msg('f', 'c', { direction: 'outbound', status: 'failed', error: 'x' }));
    expect(flattenMessages(upsertMessage(failed, msg('f', 'c', { direction: 'outbound', status: 'queued' })))[0]?.status).toBe('queued');
  });
  it('removes messages', () => {
    expect(flattenMessages(removeMessage(pages, 'm2')).map((m) => m.id)).toEqual(['m1', 'm3', 'm4']);
  });
});

describe('mention query', () => {
  it.each([
    ['hi @bo', 'bo', 3],
    ['@', '', 0],
    ['ask @Bob Sto', 'Bob Sto', 4],
    ['mail a@b', null, -1],
    ['no mention', null, -1],
  ])('%j', (text, query, start) => {
    const r = mentionQuery(text, text.length);
    if (query === null) expect(r).toBeNull();
    else expect(r).toEqual({ query, start });
  });
});
