package store

// Inbound pipeline: the raw inbound log (append with group commit, per-channel
// leases for ordered processing) and ApplyInbound, which turns normalized
// channel events into contacts, conversations, messages, reactions and
// statuses in one transaction together with their change rows.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
)

// Inbound log states.
const (
	InboundPending = "pending"
	InboundDone    = "done"
	InboundFailed  = "failed" // gave up after too many processing errors
)

// InboundEntry is one raw webhook request kept in the inbound log.
type InboundEntry struct {
	ID          string
	WorkspaceID string
	ChannelID   string
	ReceivedAt  time.Time
	Method      string
	URL         string
	Header      http.Header // without credentials (Authorization, secret tokens, cookies)
	Body        []byte
	Attempts    int
	State       string
	NextAttempt time.Time // a failed entry waits until then (and so do the later entries of its channel)

	meta []byte // the stored request metadata, once Prepare made it
}

// Prepare makes the entry's stored metadata (method, URL, headers without
// credentials) ahead of its append, so that the webhook's own goroutine does
// that work rather than the single writer.
func (e *InboundEntry) Prepare() error {
	h := e.Header.Clone()
	for _, k := range plDroppedHeaders {
		h.Del(k)
	}
	meta, err := json.Marshal(plInboundMeta{Method: e.Method, URL: e.URL, Header: h})
	e.meta = meta
	return err
}

type plInboundMeta struct {
	Method string      `json:"method,omitempty"`
	URL    string      `json:"url,omitempty"`
	Header http.Header `json:"header,omitempty"`
}

// plDroppedHeaders carry credentials and are never stored.
var plDroppedHeaders = []string{"Authorization", "Cookie", "X-Telegram-Bot-Api-Secret-Token", "Proxy-Authorization"}

// AppendInbound durably appends entries to the inbound log in ONE transaction
// (the ingest group committer batches concurrent webhooks into one call).
// Missing ids are assigned (UUIDv7, so id order is arrival order).
func (db *DB) AppendInbound(ctx context.Context, entries []InboundEntry) error {
	return db.writeKeep(ctx, func(t *tx) error { return plAppendInbound(t, entries) })
}

// AppendInboundFrom is AppendInbound of the entries take returns, take being
// called once the write connection is held: entries that a writer ahead of
// this one took into its own transaction (see ApplyOptions.Append) are not
// taken again. It returns the entries appended (none: nothing was written).
func (db *DB) AppendInboundFrom(ctx context.Context, take func() []InboundEntry) ([]InboundEntry, error) {
	var entries []InboundEntry
	err := db.writeKeep(ctx, func(t *tx) error {
		entries = take()
		return plAppendInbound(t, entries)
	})
	return entries, err
}

func plAppendInbound(t *tx, entries []InboundEntry) error {
	const per = 50
	for start := 0; start < len(entries); start += per {
		chunk := entries[start:min(start+per, len(entries))]
		var b strings.Builder
		b.WriteString(`INSERT INTO inbound_log (id, workspace_id, channel_id, received_at, headers, body, state) VALUES `)
		args := make([]any, 0, len(chunk)*7)
		for i := range chunk {
			e := &chunk[i]
			if e.ID == "" {
				e.ID = newID()
			}
			if e.ReceivedAt.IsZero() {
				e.ReceivedAt = t.now
			}
			if e.meta == nil {
				if err := e.Prepare(); err != nil {
					return err
				}
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, e.ID, e.WorkspaceID, e.ChannelID, ts(e.ReceivedAt), string(e.meta), e.Body, InboundPending)
		}
		if _, err := t.exec(b.String(), args...); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if !seen[e.ChannelID] {
			seen[e.ChannelID] = true
			if err := plChannelActivity(t, "last_inbound_at", e.ChannelID, t.now); err != nil {
				return err
			}
		}
	}
	return nil
}

// ClaimInboundChannels leases up to limit channels that have pending inbound
// entries and no live lease, for owner, until now+lease. A channel is
// processed by one lease holder at a time, so its entries keep their order;
// a crashed holder's lease simply expires.
func (db *DB) ClaimInboundChannels(ctx context.Context, owner string, lease time.Duration, limit int) ([]string, error) {
	var out []string
	// Find candidates on the read pool: the scan of pending entries must not
	// hold the (single, on SQLite) write connection, and most calls under
	// load find nothing new to claim and need no write at all. The lease
	// itself is taken below under the write lock, guarded by locked_until.
	var cands []string
	err := db.read(ctx, func(t *tx) error {
		now := ts(t.now)
		// Channel by channel (few) with an indexed probe, not entry by
		// entry: a backlog of a leased channel costs nothing. A channel is
		// due when its OLDEST pending entry is: a processor keeps the order
		// and stops at an entry waiting for its retry, so claiming the
		// channel for a later entry would only claim and release in a loop.
		rows, err := t.query(`SELECT c.id FROM channels c
			LEFT JOIN inbound_leases k ON k.channel_id = c.id
			WHERE (k.channel_id IS NULL OR k.locked_until < ?)
				AND (SELECT l.next_attempt_at FROM inbound_log l WHERE l.channel_id = c.id AND l.state = 'pending' ORDER BY l.id LIMIT 1) <= ?
			LIMIT ?`, now, now, limit)
		if err != nil {
			return err
		}
		cands, err = collectStrings(rows)
		return err
	})
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	err = db.writeKeep(ctx, func(t *tx) error {
		now := ts(t.now)
		until := ts(t.now.Add(lease))
		if t.d.name == "postgres" {
			// Several nodes claim at once: lock the expired leases with
			// SKIP LOCKED, so a node passes over the channels another node
			// is claiming instead of waiting for its transaction.
			rows, err := t.query(`SELECT channel_id FROM inbound_leases WHERE channel_id = ANY(?) AND locked_until < ? FOR UPDATE SKIP LOCKED`, cands, now)
			if err != nil {
				return err
			}
			free, err := collectStrings(rows)
			if err != nil {
				return err
			}
			rows, err = t.query(`SELECT channel_id FROM inbound_leases WHERE channel_id = ANY(?)`, cands)
			if err != nil {
				return err
			}
			leased, err := collectStrings(rows)
			if err != nil {
				return err
			}
			take := map[string]bool{}
			for _, ch := range cands {
				take[ch] = true // no lease row yet: the insert below decides
			}
			for _, ch := range leased {
				take[ch] = false
			}
			for _, ch := range free {
				take[ch] = true
			}
			kept := cands[:0:0]
			for _, ch := range cands {
				if take[ch] {
					kept = append(kept, ch)
				}
			}
			cands = kept
		}
		for _, ch := range cands {
			var got string
			err := t.queryRow(`INSERT INTO inbound_leases (channel_id, owner, locked_until) VALUES (?, ?, ?)
				ON CONFLICT (channel_id) DO UPDATE SET owner = excluded.owner, locked_until = excluded.locked_until
				WHERE inbound_leases.locked_until < ?
				RETURNING channel_id`, ch, owner, until, now).Scan(&got)
			if errors.Is(err, sql.ErrNoRows) {
				continue // another node got it first
			}
			if err != nil {
				return err
			}
			out = append(out, ch)
		}
		return nil
	})
	return out, err
}

// ReleaseInboundLease gives a channel's lease back.
func (db *DB) ReleaseInboundLease(ctx context.Context, channelID, owner string) error {
	return db.writeKeep(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM inbound_leases WHERE channel_id = ? AND owner = ?`, channelID, owner)
		return err
	})
}

// ExtendInboundLease renews a held lease; it reports false when the lease was lost.
func (db *DB) ExtendInboundLease(ctx context.Context, channelID, owner string, lease time.Duration) (bool, error) {
	var n int64
	err := db.writeKeep(ctx, func(t *tx) error {
		res, err := t.exec(`UPDATE inbound_leases SET locked_until = ? WHERE channel_id = ? AND owner = ?`, ts(t.now.Add(lease)), channelID, owner)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

const plInboundCols = `id, workspace_id, channel_id, received_at, headers, body, attempts, state, next_attempt_at`

func plScanInbound(rows *sql.Rows) ([]InboundEntry, error) {
	defer rows.Close()
	var out []InboundEntry
	for rows.Next() {
		var e InboundEntry
		var rec, next int64
		var meta []byte
		if err := rows.Scan(&e.ID, &e.WorkspaceID, &e.ChannelID, &rec, &meta, &e.Body, &e.Attempts, &e.State, &next); err != nil {
			return nil, err
		}
		if next > 0 {
			e.NextAttempt = fromTS(next)
		}
		e.ReceivedAt = fromTS(rec)
		var m plInboundMeta
		if err := decodeJSON(meta, &m); err == nil {
			e.Method, e.URL, e.Header = m.Method, m.URL, m.Header
		}
		if e.Header == nil {
			e.Header = http.Header{}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// PendingInbound lists a channel's pending entries in id (arrival) order,
// including those waiting for a retry (the caller stops there to keep order).
func (db *DB) PendingInbound(ctx context.Context, channelID string, limit int) ([]InboundEntry, error) {
	return db.PendingInboundAfter(ctx, channelID, "", limit)
}

// PendingInboundAfter is PendingInbound of the entries after afterID (a
// worker reads the next entries while it applies the ones before).
func (db *DB) PendingInboundAfter(ctx context.Context, channelID, afterID string, limit int) ([]InboundEntry, error) {
	var out []InboundEntry
	err := db.read(ctx, func(t *tx) error {
		// state as a literal: the partial index inbound_log_due serves it.
		rows, err := t.query(`SELECT `+plInboundCols+` FROM inbound_log WHERE channel_id = ? AND state = 'pending' AND id > ? ORDER BY id LIMIT ?`,
			channelID, afterID, limit)
		if err != nil {
			return err
		}
		out, err = plScanInbound(rows)
		return err
	})
	return out, err
}

// plV7Floor is the smallest UUIDv7 string of the millisecond of t ("" for
// times before the epoch).
func plV7Floor(t time.Time) string {
	ms := t.UnixMilli()
	if ms <= 0 {
		return ""
	}
	h := fmt.Sprintf("%012x", ms)
	return h[:8] + "-" + h[8:12] + "-7000-8000-000000000000"
}

// InboundSince lists a channel's entries (any state) received at or after
// since, after the id afterID, in id order: the input of a reprocess.
func (db *DB) InboundSince(ctx context.Context, channelID string, since time.Time, afterID string, limit int) ([]InboundEntry, error) {
	var out []InboundEntry
	err := db.read(ctx, func(t *tx) error {
		// Entry ids are UUIDv7 minted at append, so id order is append
		// order: the scan starts at the ids of an hour before since (the
		// margin covers a clock step) instead of the start of the log.
		from := max(afterID, plV7Floor(since.Add(-time.Hour)))
		rows, err := t.query(`SELECT `+plInboundCols+` FROM inbound_log WHERE id > ? AND channel_id = ? AND received_at >= ? ORDER BY id LIMIT ?`,
			from, channelID, ts(since), limit)
		if err != nil {
			return err
		}
		out, err = plScanInbound(rows)
		return err
	})
	return out, err
}

// FailInbound records a processing error (not a parse error: those become
// unsupported messages). The entry is retried at retryAt, or given up
// (state failed) when giveUp is true.
func (db *DB) FailInbound(ctx context.Context, id, reason string, retryAt time.Time, giveUp bool) error {
	return db.writeKeep(ctx, func(t *tx) error {
		state := InboundPending
		if giveUp {
			state = InboundFailed
		}
		if _, err := t.exec(`UPDATE inbound_log SET attempts = attempts + 1, error = ?, next_attempt_at = ?, state = ? WHERE id = ?`,
			plTruncate(reason, 1000), ts(retryAt), state, id); err != nil {
			return err
		}
		return plChannelError(t, `id = (SELECT channel_id FROM inbound_log WHERE id = ?)`, id, "inbound: "+reason)
	})
}

// InboundCounts reports the number of entries per state (for metrics and tests).
func (db *DB) InboundCounts(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := db.read(ctx, func(t *tx) error {
		// One count per state, each over its partial index (states are literals).
		rows, err := t.query(`SELECT 'pending', COUNT(*) FROM inbound_log WHERE state = 'pending'
			UNION ALL SELECT 'done', COUNT(*) FROM inbound_log WHERE state = 'done'
			UNION ALL SELECT 'failed', COUNT(*) FROM inbound_log WHERE state = 'failed'`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			var n int
			if err := rows.Scan(&s, &n); err != nil {
				return err
			}
			if n > 0 {
				out[s] = n
			}
		}
		return rows.Err()
	})
	return out, err
}

func plTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Never inside a character: PostgreSQL refuses invalid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// UnparsedExternalID is the external id of the unsupported placeholder
// message an unreadable payload becomes (one per inbound entry).
func UnparsedExternalID(entryID string) string { return "unparsed:" + entryID }

// ApplyResult counts what an ApplyInbound did.
type ApplyResult struct {
	Events      int // events applied
	NewMessages int // messages created
	Changed     int // events that changed something other than creating a message
	Unchanged   int // duplicates and no-op events
	Pending     int // events kept until their target arrives
}

// Add sums results.
func (r *ApplyResult) Add(o ApplyResult) {
	r.Events += o.Events
	r.NewMessages += o.NewMessages
	r.Changed += o.Changed
	r.Unchanged += o.Unchanged
	r.Pending += o.Pending
}

// ApplyInbound applies the events parsed from entry for channel ch and marks
// the entry done, all in ONE transaction with the change rows of every
// touched message, conversation and contact. It is idempotent: applying the
// same entry again creates nothing new.
func (db *DB) ApplyInbound(ctx context.Context, entry InboundEntry, ch inbox.Channel, events []channel.Event) (ApplyResult, error) {
	var res ApplyResult
	err := db.write(ctx, func(t *tx) error {
		var err error
		res, err = plApplyInbound(t, entry, ch, events)
		return err
	})
	return res, err
}

// InboundBatchItem is one entry and its parsed events.
type InboundBatchItem struct {
	Entry  InboundEntry
	Events []channel.Event
}

// ApplyInboundBatch applies several entries of one channel, in order, in ONE
// transaction (cheaper under load). If it fails, the caller retries the
// entries one by one to isolate the bad one.
func (db *DB) ApplyInboundBatch(ctx context.Context, ch inbox.Channel, items []InboundBatchItem) (ApplyResult, error) {
	_, res, err := db.ApplyInboundBatchUntil(ctx, ch, items, ApplyOptions{})
	return res, err
}

// ApplyOptions shape an ApplyInboundBatchUntil transaction.
type ApplyOptions struct {
	// Stop, asked after each applied item, ends the batch early when it
	// reports true: the items applied so far (at least one) are committed.
	// Nil applies all.
	Stop func(applied int) bool
	// Append, called once just before the commit, returns inbound entries
	// to append in the same transaction (the webhooks waiting for their
	// acknowledgement while the batch was applied: on SQLite's single write
	// connection they are committed with it instead of after it). They are
	// appended only if the whole transaction commits.
	Append func() []InboundEntry
}

// ApplyInboundBatchUntil is ApplyInboundBatch shaped by opts. It returns how
// many items were applied; the rest are untouched and still pending. The
// caller uses Stop to bound how long the write connection is held.
func (db *DB) ApplyInboundBatchUntil(ctx context.Context, ch inbox.Channel, items []InboundBatchItem, opts ApplyOptions) (int, ApplyResult, error) {
	var total ApplyResult
	n := 0
	stop := opts.Stop
	var a *plApplier
	err := db.writeKeep(ctx, func(t *tx) error {
		n = 0
		// One applier for the batch: an entity touched by several entries
		// gets one change row.
		a = plNewApplier(t, ch)
		if err := a.lock(); err != nil {
			return err
		}
		if ok, err := db.plCacheBegin(t); err != nil {
			return err
		} else if ok {
			a.cache = db.plc
		}
		if err := a.prefetch(items); err != nil {
			return err
		}
		for _, it := range items {
			if err := a.entry(it.Entry, it.Events); err != nil {
				return err
			}
			n++
			if stop != nil && n < len(items) && stop(n) {
				break
			}
		}
		if err := a.emitAll(); err != nil {
			return err
		}
		total = a.res
		if opts.Append != nil {
			if err := plAppendInbound(t, opts.Append()); err != nil {
				return err
			}
		}
		// The cache learns this transaction's view while it still holds the
		// write connection: no other inbound transaction can run between
		// the commit and the update and read the old view. Should the
		// commit fail after all, the cache is emptied below.
		if a.cache != nil {
			a.cache.commit(db, a)
		}
		return nil
	})
	if err != nil {
		if a != nil && a.cache != nil {
			a.cache.clear()
		}
		return 0, ApplyResult{}, err
	}
	return n, total, nil
}

// ApplyInboundDryRun computes what ApplyInbound would do and rolls it back.
func (db *DB) ApplyInboundDryRun(ctx context.Context, entry InboundEntry, ch inbox.Channel, events []channel.Event) (ApplyResult, error) {
	stx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return ApplyResult{}, db.d.mapError(err)
	}
	defer stx.Rollback()
	t := &tx{ctx: ctx, q: stx, d: db.d, now: db.clock(), publicURL: db.publicURL}
	res, err := plApplyInbound(t, entry, ch, events)
	return res, db.d.mapError(err)
}

// plApplier holds the state of one ApplyInbound.
type plApplier struct {
	t   *tx
	ch  inbox.Channel
	ws  string
	res ApplyResult
	// touched entities, emitted once at the end (in this order).
	contacts      []string
	conversations []string
	messages      []string
	seen          map[string]bool
	// parties resolved by contactFor in this transaction: resolving the
	// same party again finds the same contact and changes nothing.
	parties map[channel.Party]plContact
	// conversations found or created in this transaction, by chat key.
	convs map[string]plConv
	// pending tells, for the external ids looked up in advance, whether
	// events wait for them in pending_events (ids not in it are queried).
	pending map[string]bool
	// exists tells, for the message ids looked up in advance, whether a
	// message of this channel has that id (ids not in it are queried).
	exists map[string]bool
	// idents holds the identities looked up in advance (absent: not
	// looked up, or not known).
	idents map[string]plIdent
	// done lists the applied inbound entries, marked done at the end.
	done   []string
	locked bool // PostgreSQL: the channel's advisory lock is held
	// reprocess: the entry being applied was applied before (a retry or a
	// repair reprocess), so a stored message may be corrected by a re-parse.
	reprocess bool
	// cache: what earlier inbound transactions learned (nil: none)
	cache *plCache
	// absent: identifiers looked up in advance and not known; created:
	// contacts this transaction created (they have no conversation yet).
	absent, created map[string]bool
	// What the change rows of this transaction's entities are made from
	// without reading them back (see emitAll): the messages it created, as
	// stored, until anything else touches them; the conversations only
	// bumped since the cache's copy, as bumped; the conversations changed
	// otherwise (created, reopened, retitled...), which are read back.
	fresh     map[string]inbox.Message
	bumped    map[string]inbox.Conversation
	convDirty map[string]bool
	// emitted holds the conversations as this transaction emitted them
	// (the cache keeps them once it commits).
	emitted map[string]inbox.Conversation
}

// plIdent is a known identity of the channel: its contact, the contact's
// name and avatar, and the contact's phones and emails.
type plIdent struct {
	contact, name, avatar string
	phones, emails        map[string]bool
	// whether phones, emails hold all of the contact's (they are read only
	// when a sender of the batch comes with one)
	allPhones, allEmails bool
}

// plContact is a resolved contact and its name.
type plContact struct{ id, name string }

// plConv is a conversation found by conversationFor and its status.
type plConv struct{ id, status string }

func plApplyInbound(t *tx, entry InboundEntry, ch inbox.Channel, events []channel.Event) (ApplyResult, error) {
	a := plNewApplier(t, ch)
	if err := a.entry(entry, events); err != nil {
		return ApplyResult{}, err
	}
	if err := a.emitAll(); err != nil {
		return ApplyResult{}, err
	}
	return a.res, nil
}

func plNewApplier(t *tx, ch inbox.Channel) *plApplier {
	return &plApplier{t: t, ch: ch, ws: ch.WorkspaceID, seen: map[string]bool{},
		parties: map[channel.Party]plContact{}, convs: map[string]plConv{}, pending: map[string]bool{},
		exists: map[string]bool{}, idents: map[string]plIdent{}, absent: map[string]bool{}, created: map[string]bool{},
		fresh: map[string]inbox.Message{}, bumped: map[string]inbox.Conversation{}, convDirty: map[string]bool{}, emitted: map[string]inbox.Conversation{}}
}

// prefetch looks up, a few queries for the whole batch instead of several
// per message, what applying its new messages reads: which of their ids
// exist, events waiting for them, their senders' identities (with the
// contacts' names, phones and emails) and those contacts' conversations on
// the channel. What it finds only saves lookups: the applier queries
// whatever is not prefetched, and keeps the maps current as it writes.
func (a *plApplier) prefetch(items []InboundBatchItem) error {
	if err := a.prefetchPending(items); err != nil {
		return err
	}
	var exts, idents, groups []string
	seenIdent, seenGroup := map[string]bool{}, map[string]bool{}
	var phones, emails bool // whether any sender comes with a phone, an email
	for _, it := range items {
		for _, ev := range it.Events {
			if ev.Type != channel.EventMessage && ev.Type != "" {
				continue
			}
			phones = phones || ev.Sender.Phone != ""
			emails = emails || ev.Sender.Email != ""
			if ev.ExternalID != "" {
				if _, ok := a.exists[ev.ExternalID]; !ok {
					a.exists[ev.ExternalID] = false
					exts = append(exts, ev.ExternalID)
				}
			}
			if ev.IsGroup && ev.ChatID != "" && !seenGroup[ev.ChatID] {
				seenGroup[ev.ChatID] = true
				groups = append(groups, ev.ChatID)
			}
			if ev.Direction != "outbound" && !ev.IsGroup && ev.Sender.Identifier != "" && !seenIdent[ev.Sender.Identifier] {
				seenIdent[ev.Sender.Identifier] = true
				idents = append(idents, ev.Sender.Identifier)
			}
		}
	}
	markExists := func(rows *sql.Rows) error {
		var ext string
		if err := rows.Scan(&ext); err != nil {
			return err
		}
		a.exists[ext] = true
		return nil
	}
	// (external_id <> '' lets the partial index messages_external serve.)
	if err := a.eachID(exts, `SELECT external_id FROM messages WHERE workspace_id = ? AND channel_id = ? AND external_id <> '' AND external_id {id}`,
		[]any{a.ws, a.ch.ID}, markExists); err != nil {
		return err
	}
	if err := a.eachID(exts, `SELECT external_id FROM message_external_ids WHERE workspace_id = ? AND channel_id = ? AND external_id {id}`,
		[]any{a.ws, a.ch.ID}, markExists); err != nil {
		return err
	}
	if a.cache != nil {
		idents = a.cache.lookup(a, idents)
		a.cache.lookupGroups(a, groups)
	}
	var contacts []string
	err := a.eachID(idents, `SELECT i.identifier, i.contact_id, c.name, c.avatar_url FROM contact_identities i JOIN contacts c ON c.id = i.contact_id
		WHERE i.workspace_id = ? AND i.channel_id = ? AND i.identifier {id}`, []any{a.ws, a.ch.ID}, func(rows *sql.Rows) error {
		var ident string
		id := plIdent{phones: map[string]bool{}, emails: map[string]bool{}}
		if err := rows.Scan(&ident, &id.contact, &id.name, &id.avatar); err != nil {
			return err
		}
		a.idents[ident] = id
		contacts = append(contacts, id.contact)
		return nil
	})
	if err != nil {
		return err
	}
	for _, ident := range idents {
		if _, ok := a.idents[ident]; !ok {
			a.absent[ident] = true // a new sender: resolveContact need not look again
		}
	}
	// The phones and emails of the senders' contacts, where some sender of
	// the batch comes with one and they are not known in full already.
	for _, list := range []struct {
		query  string
		phones bool
		wanted bool
	}{
		{`SELECT contact_id, phone FROM contact_phones WHERE contact_id {id}`, true, phones},
		{`SELECT contact_id, email FROM contact_emails WHERE contact_id {id}`, false, emails},
	} {
		if !list.wanted {
			continue
		}
		byContact := map[string][]string{} // contact → its identifiers in the batch
		var ids []string
		for ident, id := range a.idents {
			if (list.phones && id.allPhones) || (!list.phones && id.allEmails) {
				continue
			}
			if byContact[id.contact] == nil {
				ids = append(ids, id.contact)
			}
			byContact[id.contact] = append(byContact[id.contact], ident)
			if list.phones {
				id.allPhones = true
			} else {
				id.allEmails = true
			}
			a.idents[ident] = id // (the maps are shared: filled below)
		}
		slices.Sort(ids) // (map order: keep statements and plans stable)
		err := a.eachID(ids, list.query, nil, func(rows *sql.Rows) error {
			var cid, v string
			if err := rows.Scan(&cid, &v); err != nil {
				return err
			}
			for _, ident := range byContact[cid] {
				if list.phones {
					a.idents[ident].phones[v] = true
				} else {
					a.idents[ident].emails[v] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// The conversations of the contacts whose conversation is not known.
	contacts = contacts[:0]
	wantConv := map[string]bool{}
	for _, id := range a.idents {
		if _, ok := a.convs["c:"+id.contact]; !ok && !wantConv[id.contact] {
			wantConv[id.contact] = true
			contacts = append(contacts, id.contact)
		}
	}
	slices.Sort(contacts)
	// Each contact's conversation on the channel, chosen as findConversation
	// chooses: not resolved or spam first, then the latest activity, then
	// the highest id. By contact only (a contact has few conversations):
	// with the channel in the condition SQLite walks the channel's index.
	type cand struct {
		plConv
		closed bool
		at     int64
	}
	best := map[string]cand{}
	err = a.eachID(contacts, `SELECT contact_id, id, status, last_activity_at, channel_id, is_group FROM conversations WHERE contact_id {id}`, nil,
		func(rows *sql.Rows) error {
			var cid, ch string
			var group bool
			var c cand
			if err := rows.Scan(&cid, &c.id, &c.status, &c.at, &ch, &group); err != nil {
				return err
			}
			if ch != a.ch.ID || group {
				return nil
			}
			c.closed = c.status == inbox.StatusResolved || c.status == inbox.StatusSpam
			b, ok := best[cid]
			if !ok || (!c.closed && b.closed) || (c.closed == b.closed && (c.at > b.at || (c.at == b.at && c.id > b.id))) {
				best[cid] = c
			}
			return nil
		})
	if err != nil {
		return err
	}
	for cid, c := range best {
		a.convs["c:"+cid] = c.plConv
	}
	return nil
}

// plInChunk bounds the ids of one list condition (see inList and eachID).
const plInChunk = 256

// inList returns the condition on a list of ids (to follow a column) and its
// arguments: "= ANY(?)" with one array on PostgreSQL, "IN (?, …)" on SQLite,
// padded to a power of two by repeating the last id (few statement texts,
// each cached prepared).
func (d dialect) inList(ids []string) (string, []any) {
	if d.name == "postgres" {
		return "= ANY(?)", []any{ids}
	}
	n := 1
	for n < len(ids) {
		n *= 2
	}
	args := make([]any, n)
	for i := range args {
		args[i] = ids[min(i, len(ids)-1)]
	}
	return "IN (" + placeholders(n) + ")", args
}

// eachID runs query for the ids, a chunk at a time, and hands each result
// row to scan. query is a SELECT whose condition ends with "<column> {id}"
// (after its other placeholders, whose values are args). On SQLite {id}
// becomes an IN list. On PostgreSQL the query runs once per id as a LATERAL
// subquery over the array of ids: one index lookup per id, whatever the
// planner's statistics say (a generic plan for "= ANY(array)" on a table not
// yet analysed scans the whole channel).
func (a *plApplier) eachID(ids []string, query string, args []any, scan func(*sql.Rows) error) error {
	for start := 0; start < len(ids); start += plInChunk {
		chunk := ids[start:min(start+plInChunk, len(ids))]
		var q string
		var all []any
		if a.t.d.name == "postgres" {
			q = `SELECT t.* FROM unnest(?::text[]) AS x(v) CROSS JOIN LATERAL (` + strings.Replace(query, "{id}", "= x.v", 1) + ` OFFSET 0) AS t`
			all = append([]any{chunk}, args...)
		} else {
			cond, list := a.t.d.inList(chunk)
			q = strings.Replace(query, "{id}", cond, 1)
			all = append(append([]any{}, args...), list...)
		}
		rows, err := a.t.query(q, all...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// prefetchPending finds in one query which of the batch's external ids have
// events waiting for them, so that creating a message needs no lookup.
func (a *plApplier) prefetchPending(items []InboundBatchItem) error {
	var ids []string
	for _, it := range items {
		for _, ev := range it.Events {
			if ev.ExternalID != "" {
				if _, ok := a.pending[ev.ExternalID]; !ok {
					a.pending[ev.ExternalID] = false
					ids = append(ids, ev.ExternalID)
				}
			}
		}
	}
	return a.eachID(ids, `SELECT target_external_id FROM pending_events WHERE channel_id = ? AND target_external_id {id}`, []any{a.ch.ID},
		func(rows *sql.Rows) error {
			var ext string
			if err := rows.Scan(&ext); err != nil {
				return err
			}
			a.pending[ext] = true
			return nil
		})
}

// lock takes PostgreSQL's per-channel advisory lock once per transaction:
// one applier per channel at a time, whatever the leases say (SQLite has a
// single writer already).
func (a *plApplier) lock() error {
	if a.locked || a.t.d.name != "postgres" {
		return nil
	}
	if _, err := a.t.exec(`SELECT pg_advisory_xact_lock(hashtext(?))`, "parley-inbound:"+a.ch.ID); err != nil {
		return err
	}
	a.locked = true
	return nil
}

// entry applies one inbound entry's events (change rows are emitted by the caller).
func (a *plApplier) entry(entry InboundEntry, events []channel.Event) error {
	t, ch := a.t, a.ch
	if err := a.lock(); err != nil {
		return err
	}
	// An entry on its first attempt was never applied: nothing of it is stored.
	reapplied := entry.ID != "" && (entry.State != InboundPending || entry.Attempts > 0)
	a.reprocess = reapplied
	defer func() { a.reprocess = false }()
	for i := range events {
		ev := events[i]
		ev.Timestamp = eventTime(ev.Timestamp, entry.ReceivedAt)
		if err := a.apply(ev, fmt.Sprintf("%s:%d", entry.ID, i)); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, ev.Type, err)
		}
		a.res.Events++
	}
	// A payload once kept as an unreadable placeholder and now parsed (after
	// a parser fix) retires the placeholder. An entry on its first attempt
	// was never applied, so it has none.
	if reapplied {
		ph := UnparsedExternalID(entry.ID)
		kept := false
		for _, ev := range events {
			kept = kept || ev.ExternalID == ph
		}
		if !kept {
			rows, err := t.query(`UPDATE messages SET deleted_at = ?, text = '' WHERE workspace_id = ? AND channel_id = ? AND external_id = ? AND external_id <> '' AND deleted_at IS NULL RETURNING id`,
				ts(t.now), ch.WorkspaceID, ch.ID, ph)
			if err != nil {
				return err
			}
			ids, err := collectStrings(rows)
			if err != nil {
				return err
			}
			for _, id := range ids {
				a.touch(inbox.EntityMessage, id)
			}
		}
	}
	if entry.ID != "" {
		a.done = append(a.done, entry.ID)
	}
	return nil
}

// markDone marks the applied entries done, a chunk of ids per statement.
func (a *plApplier) markDone() error {
	for start := 0; start < len(a.done); start += plInChunk {
		ph, args := a.t.d.inList(a.done[start:min(start+plInChunk, len(a.done))])
		if _, err := a.t.exec(`UPDATE inbound_log SET state = ?, processed_at = ?, error = '' WHERE id `+ph,
			append([]any{InboundDone, ts(a.t.now)}, args...)...); err != nil {
			return err
		}
	}
	a.done = a.done[:0]
	return nil
}

// touchConv touches a conversation changed otherwise than by a bump: its
// change row is read back.
func (a *plApplier) touchConv(id string) {
	a.convDirty[id] = true
	a.touch(inbox.EntityConversation, id)
}

func (a *plApplier) touch(kind, id string) {
	if kind == inbox.EntityMessage {
		delete(a.fresh, id) // changed after its creation: read back
	}
	k := kind + ":" + id
	if id == "" || a.seen[k] {
		return
	}
	a.seen[k] = true
	switch kind {
	case inbox.EntityContact:
		a.contacts = append(a.contacts, id)
	case inbox.EntityConversation:
		a.conversations = append(a.conversations, id)
	case inbox.EntityMessage:
		a.messages = append(a.messages, id)
	}
}

func (a *plApplier) apply(ev channel.Event, pendingID string) error {
	switch ev.Type {
	case channel.EventMessage, "":
		return a.message(ev)
	case channel.EventStatus:
		return a.status(ev, pendingID)
	case channel.EventRead:
		return a.read(ev)
	case channel.EventReaction, channel.EventEdit, channel.EventDelete:
		return a.targeted(ev, pendingID)
	case channel.EventGroupInfo:
		return a.groupInfo(ev)
	case channel.EventAuth:
		return a.auth(ev)
	case channel.EventChannelError:
		return a.channelError(ev)
	}
	// An event type this version does not know: keep it visible.
	ev.Type = channel.EventMessage
	ev.Kind = inbox.KindUnsupported
	return a.message(ev)
}

// ---- messages ----

// messageByExternal finds a message of this channel by a provider id.
func (a *plApplier) messageByExternal(ext string) (id, direction, status string, createdAt int64, convID string, err error) {
	if ext == "" {
		return "", "", "", 0, "", sql.ErrNoRows
	}
	// The message's own id first, then the other ids it is known by (one
	// round trip either way).
	err = a.t.queryRow(`SELECT * FROM (SELECT id, direction, status, created_at, conversation_id, 0 AS o FROM messages WHERE workspace_id = ? AND channel_id = ? AND external_id = ? AND external_id <> ''
		UNION ALL SELECT m.id, m.direction, m.status, m.created_at, m.conversation_id, 1 AS o FROM message_external_ids x JOIN messages m ON m.id = x.message_id
			WHERE x.workspace_id = ? AND x.channel_id = ? AND x.external_id = ?) found ORDER BY o LIMIT 1`,
		a.ws, a.ch.ID, ext, a.ws, a.ch.ID, ext).Scan(&id, &direction, &status, &createdAt, &convID, new(int))
	return id, direction, status, createdAt, convID, err
}

func plJSON(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return string(b)
	}
	s, _ := json.Marshal(map[string]string{"raw": string(b)})
	return string(s)
}

func (a *plApplier) message(ev channel.Event) error {
	t := a.t
	if ev.ExternalID != "" {
		if exists, known := a.exists[ev.ExternalID]; known {
			if exists {
				return a.stored(ev) // a replay, or the echo of our own send
			}
		} else if _, _, _, _, _, err := a.messageByExternal(ev.ExternalID); err == nil {
			return a.stored(ev)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	outbound := ev.Direction == "outbound"
	if !outbound && !ev.IsGroup && !plIdentified(ev.Sender) {
		ev.Sender = plCustomer(ev)
	}
	kind := plKind(ev)
	// The customer side: the sender of an inbound message, the recipient of an echo.
	customer := ev.Sender
	if outbound {
		customer = ev.Recipient
		if customer.Identifier == "" && !ev.IsGroup {
			customer = channel.Party{Identifier: ev.ChatID}
		}
	}
	convID, err := a.conversationFor(ev, customer, !outbound)
	if err != nil {
		return err
	}
	senderType, senderID, senderName := "contact", "", ev.Sender.Name
	status := inbox.MsgReceived
	if outbound {
		senderType = "agent"
		if ev.Sender.IsBot {
			senderType = "bot"
		}
		status = inbox.MsgSent
		if inbox.StatusRank(ev.Status) > inbox.StatusRank(status) {
			status = ev.Status
		}
	} else {
		who := ev.Sender
		if who.Identifier == "" {
			who.Identifier = ev.ChatID
		}
		c, err := a.contact(who)
		if err != nil {
			return err
		}
		senderID = c.id
		if ev.IsGroup {
			if err := a.participant(convID, c.id, ""); err != nil {
				return err
			}
		}
		if senderName == "" {
			senderName = c.name
		}
	}
	var replyTo any
	if ev.ReplyToID != "" {
		if rid, _, _, _, _, err := a.messageByExternal(ev.ReplyToID); err == nil {
			replyTo = rid
		}
	}
	var loc any
	if ev.Location != nil {
		loc = jsonNull(ev.Location)
	}
	text := ev.Text
	content := plContent(ev, kind)
	id := newID()
	created := ts(ev.Timestamp)
	var got string
	err = t.queryRow(`INSERT INTO messages (id, workspace_id, conversation_id, channel_id, direction, sender_type, sender_id, sender_name,
			kind, text, content, location, external_id, reply_to_id, status, error, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (workspace_id, channel_id, external_id) WHERE external_id <> '' DO NOTHING
		RETURNING id`,
		id, a.ws, convID, a.ch.ID, map[bool]string{true: "outbound", false: "inbound"}[outbound], senderType, senderID, senderName,
		kind, text, plJSON(content), loc, ev.ExternalID, replyTo, status, ev.Error, created).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		a.res.Unchanged++ // a concurrent duplicate won
		return nil
	}
	if err != nil {
		return err
	}
	if ev.ExternalID != "" {
		a.exists[ev.ExternalID] = true
	}
	atts, err := a.attachments(id, kind, ev)
	if err != nil {
		return err
	}
	if outbound {
		if _, err := t.exec(`INSERT INTO message_statuses (message_id, status, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, status, created); err != nil {
			return err
		}
	}
	if err := a.bumpConversation(convID, ev, kind, outbound); err != nil {
		return err
	}
	a.res.NewMessages++
	a.touch(inbox.EntityMessage, id)
	a.touch(inbox.EntityConversation, convID)
	// The message as stored (as scanMessage and fillMessages read it): its
	// change row needs no read, unless something touches it again.
	m := inbox.Message{ID: id, ConversationID: convID, Direction: map[bool]string{true: "outbound", false: "inbound"}[outbound],
		Sender: inbox.Actor{Type: senderType, ID: senderID, Name: senderName}, Kind: kind, Text: text, Attachments: atts,
		Reactions: []inbox.Reaction{}, Status: status, Error: ev.Error, ExternalID: ev.ExternalID, CreatedAt: fromTS(created)}
	if c, ok := plJSON(content).(string); ok {
		m.Content = json.RawMessage(c)
	}
	if loc != nil {
		l := *ev.Location
		m.Location = &l
	}
	if rid, ok := replyTo.(string); ok {
		m.ReplyToID = &rid
	}
	a.fresh[id] = m
	// Events that arrived before this message.
	return a.applyPending(ev.ExternalID)
}

// UnknownSender is who an inbound event naming nobody comes from (an
// unreadable payload or piece of one).
var UnknownSender = channel.Party{Identifier: "unknown", Name: "Unknown sender"}

// plIdentified reports whether resolveContact can place p.
func plIdentified(p channel.Party) bool {
	return p.Identifier != "" || plNormPhone(p.Phone) != "" || normEmail(p.Email) != ""
}

// plCustomer is the party a direct inbound event comes from: its sender,
// else its chat, else the unknown sender. Adapters emit unsupported
// placeholders for pieces they cannot read, which may name nobody: they are
// kept rather than failing (and holding up) the channel's whole batch.
func plCustomer(ev channel.Event) channel.Party {
	p := ev.Sender
	switch {
	case plIdentified(p):
		return p
	case ev.ChatID != "":
		p.Identifier = ev.ChatID
		return p
	}
	return UnknownSender
}

// stored handles a message event whose external id is stored already: a
// replay, or the echo of our own send, changes nothing. But a re-applied
// entry (a repair reprocess after a parser fix) whose event now parses
// corrects the message it once stored as unsupported, in place: same id,
// conversation, time and status.
func (a *plApplier) stored(ev channel.Event) error {
	kind := plKind(ev)
	if !a.reprocess || kind == inbox.KindUnsupported {
		a.res.Unchanged++
		return nil
	}
	id, _, _, created, convID, err := a.messageByExternal(ev.ExternalID)
	if err != nil {
		return err
	}
	var loc any
	if ev.Location != nil {
		loc = jsonNull(ev.Location)
	}
	// (Deleted stays deleted; an inbound message's error was the reason it
	// could not be read.)
	res, err := a.t.exec(`UPDATE messages SET kind = ?, text = ?, content = ?, location = ?,
			error = CASE WHEN direction = 'inbound' THEN ? ELSE error END
		WHERE id = ? AND kind = ? AND deleted_at IS NULL`,
		kind, ev.Text, plJSON(plContent(ev, kind)), loc, ev.Error, id, inbox.KindUnsupported)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		a.res.Unchanged++
		return nil
	}
	if _, err := a.t.exec(`DELETE FROM attachments WHERE message_id = ?`, id); err != nil {
		return err
	}
	if _, err := a.attachments(id, kind, ev); err != nil {
		return err
	}
	// The conversation's preview, when this is its last message.
	res, err = a.t.exec(`UPDATE conversations SET last_message_preview = ?, updated_at = ? WHERE id = ? AND last_message_at = ? AND last_message_preview <> ?`,
		preview(kind, ev.Text), ts(a.t.now), convID, created, preview(kind, ev.Text))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		a.touchConv(convID)
	}
	a.touch(inbox.EntityMessage, id)
	a.res.Changed++
	return nil
}

// plKind is the kind of a new message: the event's, else that of its first
// attachment, else text.
func plKind(ev channel.Event) string {
	if ev.Kind != "" {
		return ev.Kind
	}
	if len(ev.Attachments) > 0 {
		return ev.Attachments[0].Kind
	}
	return inbox.KindText
}

// plContent is the stored content of a new message (an unsupported one keeps
// the raw payload).
func plContent(ev channel.Event, kind string) []byte {
	if kind == inbox.KindUnsupported && len(ev.Content) == 0 {
		return ev.Raw
	}
	return ev.Content
}

// attachments stores a new message's attachment metadata and returns the
// attachments as stored (as scanAttachment reads them).
func (a *plApplier) attachments(messageID, kind string, ev channel.Event) ([]inbox.Attachment, error) {
	out := []inbox.Attachment{}
	for _, m := range ev.Attachments {
		mk := m.Kind
		if mk == "" {
			mk = kind
		}
		id := newID()
		if _, err := a.t.exec(`INSERT INTO attachments (id, workspace_id, message_id, kind, mime_type, filename, size, duration_ms, width, height, provider_ref, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, a.ws, messageID, mk, m.MimeType, m.Filename, m.Size, m.DurationMS, m.Width, m.Height, m.ProviderRef, ts(a.t.now)); err != nil {
			return nil, err
		}
		out = append(out, inbox.Attachment{ID: id, MessageID: messageID, Kind: mk, MimeType: m.MimeType, Filename: m.Filename, Size: m.Size,
			URL: attachmentURL(a.ws, id), DurationMS: m.DurationMS, Width: m.Width, Height: m.Height, ProviderRef: m.ProviderRef})
	}
	return out, nil
}

func (a *plApplier) bumpConversation(convID string, ev channel.Event, kind string, outbound bool) error {
	at := ts(ev.Timestamp)
	dir := "inbound"
	if outbound {
		dir = "outbound"
	}
	pv, now := preview(kind, ev.Text), ts(a.t.now)
	// Only move last_message forward in time (old history replays do not
	// take it over). Inbound: the inbound counters too.
	inbound := ""
	args := []any{at, pv, at, dir, at, at, at, at, now}
	if !outbound {
		inbound = `,
			inbound_count = inbound_count + 1,
			last_inbound_at = CASE WHEN last_inbound_at IS NULL OR last_inbound_at < ? THEN ? ELSE last_inbound_at END`
		args = append(args, at, at)
	}
	if _, err := a.t.exec(`UPDATE conversations SET
			last_message_preview = CASE WHEN last_message_at IS NULL OR last_message_at <= ? THEN ? ELSE last_message_preview END,
			last_message_direction = CASE WHEN last_message_at IS NULL OR last_message_at <= ? THEN ? ELSE last_message_direction END,
			last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at <= ? THEN ? ELSE last_message_at END,
			last_activity_at = CASE WHEN last_activity_at < ? THEN ? ELSE last_activity_at END,
			updated_at = ?`+inbound+`
		WHERE id = ?`, append(args, convID)...); err != nil {
		return err
	}
	// The same change on the API shape, where it is known exactly (the
	// cache's copy, or this transaction's bumped one): the change row then
	// needs no read.
	c, ok := a.bumped[convID]
	if !ok && a.cache != nil && !a.convDirty[convID] {
		c, ok = a.cache.conversation(convID)
	}
	if !ok {
		return nil
	}
	if c.LastMessage == nil || ts(c.LastMessage.At) <= at {
		c.LastMessage = &inbox.LastMessage{Preview: pv, At: fromTS(at), Direction: dir}
	}
	if !outbound && (c.LastInboundAt == nil || ts(*c.LastInboundAt) < at) {
		t := fromTS(at)
		c.LastInboundAt = &t
	}
	c.UpdatedAt = fromTS(now)
	a.bumped[convID] = c
	return nil
}

// ---- contacts ----

// normPhone makes an E.164-looking "+digits" string, "" when implausible.
func plNormPhone(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	if len(d) < 7 || len(d) > 15 {
		return ""
	}
	return "+" + d
}

// contactFor resolves a party to a contact: by identity on this channel, then
// (within this workspace only) by normalized phone or email, else a new
// contact. Names and avatars only fill empty fields.
func (a *plApplier) contactFor(p channel.Party) (string, error) {
	c, err := a.contact(p)
	return c.id, err
}

// contact is contactFor with the contact's name.
func (a *plApplier) contact(p channel.Party) (plContact, error) {
	if c, ok := a.parties[p]; ok {
		return c, nil
	}
	c, err := a.resolveContact(p)
	if err == nil {
		a.parties[p] = c
	}
	return c, err
}

// lookupIdentity finds a known identity in one round trip: the contact, its
// name and avatar, and whether it has this phone and email already.
func (a *plApplier) lookupIdentity(ident, phone, email string, cid, name, avatar *string, hasPhone, hasEmail *bool) error {
	return a.t.queryRow(`SELECT i.contact_id, c.name, c.avatar_url,
			EXISTS (SELECT 1 FROM contact_phones p WHERE p.contact_id = i.contact_id AND p.phone = ?),
			EXISTS (SELECT 1 FROM contact_emails e WHERE e.contact_id = i.contact_id AND e.email = ?)
		FROM contact_identities i JOIN contacts c ON c.id = i.contact_id
		WHERE i.workspace_id = ? AND i.channel_id = ? AND i.identifier = ?`, phone, email, a.ws, a.ch.ID, ident).Scan(cid, name, avatar, hasPhone, hasEmail)
}

func (a *plApplier) resolveContact(p channel.Party) (plContact, error) {
	t := a.t
	ident := p.Identifier
	phone := plNormPhone(p.Phone)
	email := normEmail(p.Email)
	if ident == "" {
		ident = phone
		if ident == "" {
			ident = email
		}
	}
	if ident == "" {
		return plContact{}, inbox.Errorf(inbox.Invalid, "event has no sender identifier")
	}
	// A known identity (the usual case): prefetched, or one round trip.
	var cid, name, avatar string
	var hasPhone, hasEmail bool
	var err error
	if id, ok := a.idents[ident]; ok {
		cid, name, avatar = id.contact, id.name, id.avatar
		hasPhone, hasEmail = phone == "" || id.phones[phone], email == "" || id.emails[email]
	} else if a.absent[ident] {
		err = sql.ErrNoRows
	} else {
		err = a.lookupIdentity(ident, phone, email, &cid, &name, &avatar, &hasPhone, &hasEmail)
	}
	switch {
	case err == nil:
	case errors.Is(err, sql.ErrNoRows):
		cid, name, avatar = "", "", ""
		if phone != "" {
			err = t.queryRow(`SELECT p.contact_id, c.name, c.avatar_url FROM contact_phones p JOIN contacts c ON c.id = p.contact_id
				WHERE p.workspace_id = ? AND p.phone = ? ORDER BY p.contact_id LIMIT 1`, a.ws, phone).Scan(&cid, &name, &avatar)
		}
		if cid == "" && email != "" {
			err = t.queryRow(`SELECT e.contact_id, c.name, c.avatar_url FROM contact_emails e JOIN contacts c ON c.id = e.contact_id
				WHERE e.workspace_id = ? AND e.email = ? ORDER BY e.contact_id LIMIT 1`, a.ws, email).Scan(&cid, &name, &avatar)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return plContact{}, err
		}
		created := cid == ""
		if created {
			cid, name, avatar = newID(), p.Name, p.AvatarURL
			if _, err := t.exec(`INSERT INTO contacts (id, workspace_id, name, avatar_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				cid, a.ws, p.Name, p.AvatarURL, ts(t.now), ts(t.now)); err != nil {
				return plContact{}, err
			}
		}
		// A concurrent writer may have won the identity: use whatever is stored.
		var stored string
		if err := t.queryRow(`INSERT INTO contact_identities (workspace_id, channel_id, identifier, contact_id, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (workspace_id, channel_id, identifier) DO UPDATE SET contact_id = contact_identities.contact_id
			RETURNING contact_id`, a.ws, a.ch.ID, ident, cid, ts(t.now)).Scan(&stored); err != nil {
			return plContact{}, err
		}
		delete(a.absent, ident) // known from now on
		if stored != cid {
			cid = stored
			if err := t.queryRow(`SELECT name, avatar_url FROM contacts WHERE id = ?`, cid).Scan(&name, &avatar); err != nil {
				return plContact{}, err
			}
		} else if created {
			a.created[cid] = true
		}
		a.touch(inbox.EntityContact, cid)
	default:
		return plContact{}, err
	}
	// Fill in empty fields only: never overwrite an operator's edit.
	if (name == "" && p.Name != "") || (avatar == "" && p.AvatarURL != "") {
		filled, err := fillContact(t, cid, p.Name, p.AvatarURL)
		if err != nil {
			return plContact{}, err
		}
		if filled {
			a.touch(inbox.EntityContact, cid)
			if name == "" {
				name = p.Name
			}
			if avatar == "" {
				avatar = p.AvatarURL
			}
			if id, ok := a.idents[ident]; ok {
				id.name, id.avatar = name, avatar
				a.idents[ident] = id
			}
		}
	}
	if phone != "" && !hasPhone {
		if ok, err := a.addListValue("contact_phones", "phone", cid, phone); err != nil {
			return plContact{}, err
		} else if ok {
			a.touch(inbox.EntityContact, cid)
		}
		if id, ok := a.idents[ident]; ok {
			id.phones[phone] = true
		}
	}
	if email != "" && !hasEmail {
		if ok, err := a.addListValue("contact_emails", "email", cid, email); err != nil {
			return plContact{}, err
		} else if ok {
			a.touch(inbox.EntityContact, cid)
		}
		if id, ok := a.idents[ident]; ok {
			id.emails[email] = true
		}
	}
	return plContact{id: cid, name: name}, nil
}

// addListValue appends v to a contact's phones or emails unless it is there
// already (one statement), reporting whether it was added.
func (a *plApplier) addListValue(table, col, cid, v string) (bool, error) {
	res, err := a.t.exec(`INSERT INTO `+table+` (contact_id, workspace_id, `+col+`, position)
		SELECT ?, ?, ?, COALESCE(MAX(position), -1) + 1 FROM `+table+` WHERE contact_id = ?
		ON CONFLICT (contact_id, `+col+`) DO NOTHING`, cid, a.ws, v, cid)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (a *plApplier) participant(convID, contactID, role string) error {
	res, err := a.t.exec(`INSERT INTO conversation_participants (conversation_id, contact_id, workspace_id, role, joined_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, convID, contactID, a.ws, role, ts(a.t.now))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		a.touchConv(convID)
	}
	return nil
}

// ---- conversations ----

// conversationFor finds the conversation of an event: for a group chat the
// one with its external chat id, otherwise the customer's on this channel.
// The newest one is used; a resolved (or snoozed) one is reopened when
// reopen is set (an inbound message); none: a new open conversation.
func (a *plApplier) conversationFor(ev channel.Event, customer channel.Party, reopen bool) (string, error) {
	var contactID, chat string
	var err error
	if ev.IsGroup {
		chat = ev.ChatID
		if chat == "" {
			return "", inbox.Errorf(inbox.Invalid, "group event without chat id")
		}
		// The group itself is the conversation's contact (its address on the channel).
		contactID, err = a.contactFor(channel.Party{Identifier: chat, Name: ev.GroupTitle, AvatarURL: ev.GroupAvatar})
	} else {
		contactID, err = a.contactFor(customer)
		if customer.Identifier != "" {
			chat = customer.Identifier
		}
		if ev.ChatID != "" {
			chat = ev.ChatID
		}
	}
	if err != nil {
		return "", err
	}
	key := "c:" + contactID
	if ev.IsGroup {
		key = "g:" + chat
	}
	if c, ok := a.convs[key]; ok && !(reopen && (c.status == inbox.StatusResolved || c.status == inbox.StatusSnoozed)) {
		return c.id, nil
	}
	c, err := a.findConversation(ev, contactID, chat, reopen)
	if err == nil {
		a.convs[key] = c
	}
	return c.id, err
}

// findConversation is conversationFor without the transaction's cache: it
// returns the conversation and its status after a reopen.
func (a *plApplier) findConversation(ev channel.Event, contactID, chat string, reopen bool) (plConv, error) {
	t := a.t
	var id, status string
	var err error
	if ev.IsGroup {
		err = t.queryRow(`SELECT id, status FROM conversations WHERE workspace_id = ? AND channel_id = ? AND external_chat_id = ? AND is_group = ?
			ORDER BY CASE WHEN status IN ('resolved', 'spam') THEN 1 ELSE 0 END, last_activity_at DESC, id DESC LIMIT 1`, a.ws, a.ch.ID, chat, true).Scan(&id, &status)
	} else {
		// The channel implies the workspace; leaving workspace_id out lets
		// SQLite look up by contact (conversations_contact) instead of
		// scanning every conversation of the channel.
		if a.created[contactID] {
			err = sql.ErrNoRows // a contact created by this transaction has no conversation
		} else {
			err = t.queryRow(`SELECT id, status FROM conversations WHERE contact_id = ? AND channel_id = ? AND is_group = ?
			ORDER BY CASE WHEN status IN ('resolved', 'spam') THEN 1 ELSE 0 END, last_activity_at DESC, id DESC LIMIT 1`, contactID, a.ch.ID, false).Scan(&id, &status)
		}
	}
	switch {
	case err == nil:
		if reopen && (status == inbox.StatusResolved || status == inbox.StatusSnoozed) {
			if _, err := t.exec(`UPDATE conversations SET status = ?, snoozed_until = NULL, updated_at = ? WHERE id = ?`, inbox.StatusOpen, ts(t.now), id); err != nil {
				return plConv{}, err
			}
			a.touchConv(id)
			status = inbox.StatusOpen
		}
		return plConv{id: id, status: status}, nil
	case !errors.Is(err, sql.ErrNoRows):
		return plConv{}, err
	}
	n := newConversation{ContactID: contactID, ChannelID: a.ch.ID, IsGroup: ev.IsGroup, ExternalChat: chat, ActivityAt: ev.Timestamp}
	if ev.IsGroup {
		n.Title = ev.GroupTitle
		if ev.GroupAvatar != "" {
			n.GroupMeta = map[string]any{"avatar_url": ev.GroupAvatar}
		}
	}
	id, err = insertConversation(t, a.ws, n)
	if err != nil {
		return plConv{}, err
	}
	a.touchConv(id)
	return plConv{id: id, status: inbox.StatusOpen}, nil
}

func (a *plApplier) groupInfo(ev channel.Event) error {
	if ev.ChatID == "" {
		a.res.Unchanged++
		return nil
	}
	ev.IsGroup = true
	convID, err := a.conversationFor(ev, channel.Party{}, false)
	if err != nil {
		return err
	}
	changed := false
	if ev.GroupTitle != "" {
		res, err := a.t.exec(`UPDATE conversations SET title = ?, updated_at = ? WHERE id = ? AND title <> ?`, ev.GroupTitle, ts(a.t.now), convID, ev.GroupTitle)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			changed = true
		}
	}
	if ev.GroupAvatar != "" {
		var raw []byte
		if err := a.t.queryRow(`SELECT group_meta FROM conversations WHERE id = ?`, convID).Scan(&raw); err != nil {
			return err
		}
		meta := map[string]any{}
		_ = decodeJSON(raw, &meta)
		if meta["avatar_url"] != ev.GroupAvatar {
			meta["avatar_url"] = ev.GroupAvatar
			if _, err := a.t.exec(`UPDATE conversations SET group_meta = ?, updated_at = ? WHERE id = ?`, jsonNull(meta), ts(a.t.now), convID); err != nil {
				return err
			}
			changed = true
		}
	}
	for _, p := range ev.Participants {
		cid, err := a.contactFor(p)
		if err != nil {
			return err
		}
		if err := a.participant(convID, cid, ""); err != nil {
			return err
		}
	}
	if changed {
		a.touchConv(convID)
		a.res.Changed++
	} else {
		a.res.Unchanged++
	}
	return nil
}

// ---- statuses, reads, reactions, edits, deletes ----

type plPendingEvent struct {
	Type      channel.EventType `json:"type"`
	TargetID  string            `json:"target_id"`
	Emoji     string            `json:"emoji,omitempty"`
	Status    string            `json:"status,omitempty"`
	Error     string            `json:"error,omitempty"`
	Text      string            `json:"text,omitempty"`
	Sender    channel.Party     `json:"sender"`
	Direction string            `json:"direction,omitempty"`
	ChatID    string            `json:"chat_id,omitempty"`
	IsGroup   bool              `json:"is_group,omitempty"`
	Timestamp time.Time         `json:"timestamp"`
}

func (a *plApplier) keepPending(ev channel.Event, pendingID string) error {
	b, err := json.Marshal(plPendingEvent{Type: ev.Type, TargetID: ev.TargetID, Emoji: ev.Emoji, Status: ev.Status, Error: ev.Error, Text: ev.Text,
		Sender: ev.Sender, Direction: ev.Direction, ChatID: ev.ChatID, IsGroup: ev.IsGroup, Timestamp: ev.Timestamp})
	if err != nil {
		return err
	}
	if _, err := a.t.exec(`INSERT INTO pending_events (id, workspace_id, channel_id, target_external_id, event, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, pendingID, a.ws, a.ch.ID, ev.TargetID, string(b), ts(a.t.now)); err != nil {
		return err
	}
	a.pending[ev.TargetID] = true
	a.res.Pending++
	return nil
}

// applyPending applies, in arrival order, the events kept for ext.
func (a *plApplier) applyPending(ext string) error {
	if has, known := a.pending[ext]; ext == "" || (known && !has) {
		return nil
	}
	rows, err := a.t.query(`SELECT id, event FROM pending_events WHERE channel_id = ? AND target_external_id = ? ORDER BY created_at, id`, a.ch.ID, ext)
	if err != nil {
		return err
	}
	type row struct {
		id string
		ev []byte
	}
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.ev); err != nil {
			rows.Close()
			return err
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range list {
		var p plPendingEvent
		if err := json.Unmarshal(r.ev, &p); err != nil {
			return err
		}
		ev := channel.Event{Type: p.Type, TargetID: p.TargetID, Emoji: p.Emoji, Status: p.Status, Error: p.Error, Text: p.Text,
			Sender: p.Sender, Direction: p.Direction, ChatID: p.ChatID, IsGroup: p.IsGroup, Timestamp: p.Timestamp}
		var err error
		if ev.Type == channel.EventStatus {
			err = a.status(ev, "")
		} else {
			err = a.targeted(ev, "")
		}
		if err != nil {
			return err
		}
		if _, err := a.t.exec(`DELETE FROM pending_events WHERE id = ?`, r.id); err != nil {
			return err
		}
	}
	a.pending[ext] = false
	return nil
}

// target finds the message (id, direction, status) an event refers to. When
// it is not stored yet the event is kept for it (given a pendingID) or
// counted unchanged, and ok is false.
func (a *plApplier) target(ev channel.Event, pendingID string) (id, dir, status string, ok bool, err error) {
	id, dir, status, _, _, err = a.messageByExternal(ev.TargetID)
	if errors.Is(err, sql.ErrNoRows) {
		if pendingID == "" || ev.TargetID == "" {
			a.res.Unchanged++
			return "", "", "", false, nil
		}
		return "", "", "", false, a.keepPending(ev, pendingID)
	}
	return id, dir, status, err == nil, err
}

// status records a delivery status of one of our messages. Statuses are kept
// per message and status; the message's status only moves up (sent <
// delivered < read; failed is terminal and keeps its reason).
func (a *plApplier) status(ev channel.Event, pendingID string) error {
	if ev.TargetID == "" && !ev.Watermark.IsZero() {
		return a.statusUpTo(ev)
	}
	id, dir, cur, ok, err := a.target(ev, pendingID)
	if !ok || err != nil {
		return err
	}
	if dir != "outbound" || inbox.StatusRank(ev.Status) == 0 {
		a.res.Unchanged++
		return nil
	}
	if _, err := a.t.exec(`INSERT INTO message_statuses (message_id, status, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, ev.Status, ts(ev.Timestamp)); err != nil {
		return err
	}
	if inbox.StatusRank(ev.Status) <= inbox.StatusRank(cur) {
		a.res.Unchanged++
		return nil
	}
	if ev.Status == inbox.MsgFailed {
		reason := ev.Error
		if reason == "" {
			reason = "the provider reported the message as failed"
		}
		_, err = a.t.exec(`UPDATE messages SET status = ?, error = ? WHERE id = ?`, ev.Status, reason, id)
	} else {
		_, err = a.t.exec(`UPDATE messages SET status = ? WHERE id = ?`, ev.Status, id)
	}
	if err != nil {
		return err
	}
	a.touch(inbox.EntityMessage, id)
	a.res.Changed++
	return nil
}

// read marks our outbound messages of the chat up to the watermark (or the
// target message) as read.
func (a *plApplier) read(ev channel.Event) error {
	var convID string
	var upTo int64
	if ev.TargetID != "" {
		_, _, _, created, cid, err := a.messageByExternal(ev.TargetID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil {
			convID, upTo = cid, created
		}
	}
	if convID == "" {
		if ev.Watermark.IsZero() {
			a.res.Unchanged++
			return nil
		}
		upTo = ts(ev.Watermark)
		cid, err := a.chatConversation(ev)
		if err != nil {
			return err
		}
		convID = cid
	}
	return a.raiseUpTo(ev, convID, upTo, inbox.MsgRead)
}

// statusUpTo applies a delivery status that names no message but a
// watermark (Messenger's delivery without mids: everything we sent before
// it was delivered) to our messages of the chat sent up to it.
func (a *plApplier) statusUpTo(ev channel.Event) error {
	if r := inbox.StatusRank(ev.Status); r == 0 || ev.Status == inbox.MsgFailed {
		a.res.Unchanged++ // a failure names the message that failed
		return nil
	}
	convID, err := a.chatConversation(ev)
	if err != nil {
		return err
	}
	return a.raiseUpTo(ev, convID, ts(ev.Watermark), ev.Status)
}

// chatConversation is the latest conversation of the customer a
// watermark event identifies (by its chat, else its sender) on this
// channel; "" when there is none.
func (a *plApplier) chatConversation(ev channel.Event) (string, error) {
	ident := ev.ChatID
	if ident == "" {
		ident = ev.Sender.Identifier
	}
	var convID string
	q := `SELECT c.id FROM conversations c JOIN contact_identities i ON i.contact_id = c.contact_id AND i.channel_id = c.channel_id
			WHERE i.workspace_id = ? AND i.channel_id = ? AND i.identifier = ? ORDER BY c.last_activity_at DESC LIMIT 1`
	err := a.t.queryRow(q, a.ws, a.ch.ID, ident).Scan(&convID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return convID, err
}

// raiseUpTo moves our messages of conversation convID created up to upTo to
// status to, recording it; only up: a message there or beyond (or failed)
// keeps its status, and one still queued never reached the provider.
func (a *plApplier) raiseUpTo(ev channel.Event, convID string, upTo int64, to string) error {
	var from []string
	for _, s := range []string{inbox.MsgSent, inbox.MsgDelivered} {
		if inbox.StatusRank(s) < inbox.StatusRank(to) {
			from = append(from, s)
		}
	}
	if convID == "" || len(from) == 0 {
		a.res.Unchanged++
		return nil
	}
	args := []any{to, convID, upTo}
	for _, s := range from {
		args = append(args, s)
	}
	rows, err := a.t.query(`UPDATE messages SET status = ? WHERE conversation_id = ? AND direction = 'outbound' AND created_at <= ?
		AND status IN (`+placeholders(len(from))+`) RETURNING id`, args...)
	if err != nil {
		return err
	}
	ids, err := collectStrings(rows)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := a.t.exec(`INSERT INTO message_statuses (message_id, status, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, to, ts(ev.Timestamp)); err != nil {
			return err
		}
		a.touch(inbox.EntityMessage, id)
	}
	if len(ids) > 0 {
		a.res.Changed++
	} else {
		a.res.Unchanged++
	}
	return nil
}

// targeted applies a reaction, edit or delete, or keeps it until its target arrives.
func (a *plApplier) targeted(ev channel.Event, pendingID string) error {
	id, _, _, ok, err := a.target(ev, pendingID)
	if !ok || err != nil {
		return err
	}
	var n int64
	switch ev.Type {
	case channel.EventReaction:
		actorType, actorID, actorName := "contact", "", ev.Sender.Name
		if ev.Direction == "outbound" {
			actorType = "agent"
			actorID = ev.Sender.Identifier
		} else {
			who := ev.Sender
			if who.Identifier == "" {
				who.Identifier = ev.ChatID
			}
			if !plIdentified(who) {
				who = UnknownSender
			}
			if actorID, err = a.contactFor(who); err != nil {
				return err
			}
		}
		var res sql.Result
		if ev.Emoji == "" {
			res, err = a.t.exec(`DELETE FROM reactions WHERE message_id = ? AND actor_type = ? AND actor_id = ?`, id, actorType, actorID)
		} else {
			res, err = a.t.exec(`INSERT INTO reactions (message_id, workspace_id, actor_type, actor_id, actor_name, emoji, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (message_id, actor_type, actor_id) DO UPDATE SET emoji = excluded.emoji, actor_name = excluded.actor_name
				WHERE reactions.emoji <> excluded.emoji`, id, a.ws, actorType, actorID, actorName, ev.Emoji, ts(ev.Timestamp))
		}
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
	case channel.EventEdit:
		// Edits may arrive out of order (Telegram delivers over parallel
		// connections): one older than the applied edit is stale. A replay
		// of the same edit finds its text there and changes nothing (its
		// previous_text is kept).
		res, err := a.t.exec(`UPDATE messages SET previous_text = text, text = ?, edited_at = ?
			WHERE id = ? AND text <> ? AND deleted_at IS NULL AND (edited_at IS NULL OR edited_at <= ?)`,
			ev.Text, ts(ev.Timestamp), id, ev.Text, ts(ev.Timestamp))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
	case channel.EventDelete:
		res, err := a.t.exec(`UPDATE messages SET text = '', deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, ts(ev.Timestamp), id)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
	}
	if n > 0 {
		a.touch(inbox.EntityMessage, id)
		a.res.Changed++
	} else {
		a.res.Unchanged++
	}
	return nil
}

// auth records a channel's authorization state.
func (a *plApplier) auth(ev channel.Event) error {
	status := "active"
	switch ev.AuthState {
	case "authorized", "active", "":
	case "pending":
		status = "pending"
	default:
		status = "disconnected"
	}
	res, err := a.t.exec(`UPDATE channels SET status = ?, status_detail = ?, updated_at = ? WHERE id = ? AND (status <> ? OR status_detail <> ?)`,
		status, ev.AuthDetail, ts(a.t.now), a.ch.ID, status, ev.AuthDetail)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		a.res.Changed++
		c, err := getChannel(a.t, a.ws, a.ch.ID)
		if err != nil {
			return err
		}
		return emitChannel(a.t, c)
	}
	a.res.Unchanged++
	return nil
}

// channelError records a problem the provider reports with the channel as
// its last error (its health), leaving its authorization state alone. Only
// a newer report replaces the last error: replaying an old entry does not
// hide a later failure.
func (a *plApplier) channelError(ev channel.Event) error {
	reason := ev.Error
	if reason == "" {
		reason = ev.Text
	}
	if reason == "" {
		reason = "the provider reported a problem with the channel"
	}
	at := ts(ev.Timestamp)
	res, err := a.t.exec(`UPDATE channels SET last_error = ?, last_error_at = ? WHERE id = ? AND (last_error_at IS NULL OR last_error_at < ?)`,
		plTruncate("provider: "+reason, 1000), at, a.ch.ID, at)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		a.res.Changed++
	} else {
		a.res.Unchanged++
	}
	return nil
}

// emitAll marks the applied entries done and appends the change rows of
// every touched entity.
// PruneInbound deletes processed inbound entries received before olderThan
// (raw payloads are kept until then so a parser fix can reprocess them).
// Failed and pending entries are kept.
func (db *DB) PruneInbound(ctx context.Context, olderThan time.Time) (int, error) {
	var n int64
	err := db.writeKeep(ctx, func(t *tx) error {
		res, err := t.exec(`DELETE FROM inbound_log WHERE state = 'done' AND received_at < ?`, ts(olderThan))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// eventTime is when an event happened, for ordering a thread. Providers give
// whole seconds (WhatsApp, Telegram, Wappi) while our own sends carry
// microseconds, so an event delivered promptly (within 2 s of its whole
// provider second) is placed by its receive time, capped to that second:
// receive order inside the second, provider order across seconds. A late
// delivery keeps the provider's time as given.
func eventTime(provider, received time.Time) time.Time {
	received = received.UTC().Truncate(time.Microsecond)
	if provider.IsZero() {
		return received
	}
	provider = provider.UTC().Truncate(time.Microsecond)
	if !provider.Equal(provider.Truncate(time.Second)) || received.Before(provider) || !received.Before(provider.Add(2*time.Second)) {
		return provider
	}
	if end := provider.Add(time.Second - time.Microsecond); received.After(end) {
		return end
	}
	return received
}
