package store

import (
	"maps"
	"sync"

	"github.com/parleyhq/parley/internal/inbox"
)

// plCache keeps, between inbound transactions on SQLite, what they read and
// wrote of senders and conversations: a channel's identities (with their
// contact's name, avatar, phones and emails) and the conversation a contact
// or a group chat is routed to. A batch then looks up only the senders and
// chats it has not seen before.
//
// It is only ever used while it is exact. SQLite has one write connection,
// so this process sees every write: any other write transaction (an
// operator's edit, a merge, a status change, the outbound worker) bumps
// DB.writeGen and empties the cache at the next inbound transaction, and a
// commit by another process (a repair command on the same file) shows in
// PRAGMA data_version and empties it too. An inbound transaction adds its
// own view just before its commit, still holding the write connection (and
// empties the cache should the commit fail). On PostgreSQL several nodes write, so
// there is no cache.
type plCache struct {
	mu          sync.Mutex
	gen         uint64              // DB.writeGen the contents are exact for
	dataVersion int64               // the write connection's data_version then
	idents      map[string]plIdent  // channel + "\x00" + identifier
	convs       map[string]plConv   // channel + "\x00" + "c:"contact or "g:"chat
	byContact   map[string][]string // contact → its keys in idents
	// conversations as last emitted (API shape), and by contact
	convObjs       map[string]inbox.Conversation
	convsByContact map[string][]string
}

// plCacheMax bounds each map; a full map is emptied (cheap, and rare: a
// busy channel's senders fit many times).
const plCacheMax = 100_000

func plCacheKey(channelID, k string) string { return channelID + "\x00" + k }

// plCacheBegin is called by an inbound transaction that holds the write
// connection: it empties the cache when anything else wrote since it was
// filled, and reports whether the transaction may use it.
func (db *DB) plCacheBegin(t *tx) (bool, error) {
	if db.d.name != "sqlite" || db.plc == nil {
		return false, nil
	}
	var v int64
	if err := t.queryRow(`PRAGMA data_version`).Scan(&v); err != nil {
		return false, err
	}
	c := db.plc
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen := db.writeGen.Load(); c.gen != gen || c.dataVersion != v || c.idents == nil {
		c.gen, c.dataVersion = gen, v
		c.reset()
	}
	return true, nil
}

func (c *plCache) reset() {
	c.idents, c.convs, c.byContact = map[string]plIdent{}, map[string]plConv{}, map[string][]string{}
	c.convObjs, c.convsByContact = map[string]inbox.Conversation{}, map[string][]string{}
}

// clear empties the cache (a transaction that taught it something did not
// commit after all).
func (c *plCache) clear() {
	c.mu.Lock()
	c.reset()
	c.idents = nil // the next plCacheBegin starts over
	c.mu.Unlock()
}

// conversation returns the cached API shape of a conversation.
func (c *plCache) conversation(id string) (inbox.Conversation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conv, ok := c.convObjs[id]
	return conv, ok
}

// lookup copies what the cache knows of the batch's senders and chats into
// the applier; it returns the identifiers and group chats it does not know.
func (c *plCache) lookup(a *plApplier, idents []string) (missing []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ident := range idents {
		id, ok := c.idents[plCacheKey(a.ch.ID, ident)]
		if !ok {
			missing = append(missing, ident)
			continue
		}
		// The applier changes its copy; the cache keeps its own.
		id.phones, id.emails = maps.Clone(id.phones), maps.Clone(id.emails)
		a.idents[ident] = id
		if conv, ok := c.convs[plCacheKey(a.ch.ID, "c:"+id.contact)]; ok {
			a.convs["c:"+id.contact] = conv
		}
	}
	return missing
}

// lookupGroups copies the cached conversations of group chats.
func (c *plCache) lookupGroups(a *plApplier, chats []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, chat := range chats {
		if conv, ok := c.convs[plCacheKey(a.ch.ID, "g:"+chat)]; ok {
			a.convs["g:"+chat] = conv
		}
	}
}

// commit adds what a transaction knows, just before it commits: its identities, except
// those of contacts it changed (and any other identity of those contacts
// is dropped: it may hold the old name), and its conversations.
func (c *plCache) commit(db *DB, a *plApplier) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idents == nil || c.gen != db.writeGen.Load() {
		return
	}
	changed := map[string]bool{}
	for _, cid := range a.contacts {
		changed[cid] = true
		for _, k := range c.byContact[cid] {
			delete(c.idents, k)
		}
		delete(c.byContact, cid)
		// (their conversations show the contact's name and avatar)
		for _, id := range c.convsByContact[cid] {
			if conv, ok := c.convObjs[id]; ok && conv.Contact.ID == cid {
				delete(c.convObjs, id)
			}
		}
		delete(c.convsByContact, cid)
	}
	if len(c.idents)+len(a.idents) > plCacheMax || len(c.convs)+len(a.convs) > plCacheMax || len(c.convObjs)+len(a.emitted) > plCacheMax {
		c.reset()
	}
	for id, conv := range a.emitted {
		if _, ok := c.convObjs[id]; !ok {
			c.convsByContact[conv.Contact.ID] = append(c.convsByContact[conv.Contact.ID], id)
		}
		c.convObjs[id] = conv
	}
	for ident, id := range a.idents {
		if changed[id.contact] {
			continue
		}
		k := plCacheKey(a.ch.ID, ident)
		if _, ok := c.idents[k]; !ok {
			c.byContact[id.contact] = append(c.byContact[id.contact], k)
		}
		c.idents[k] = id
	}
	for k, conv := range a.convs {
		c.convs[plCacheKey(a.ch.ID, k)] = conv
	}
}
