package realtime

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// signals keeps the ephemeral state of every workspace: presence, typing and
// viewers. It never touches the database. Each node owns the state of its own
// connections and shares it over the bus as deltas plus a periodic full
// state; the state of a node that falls silent expires.
type signals struct {
	h  *Hub
	mu sync.Mutex
	ws map[string]*wsSig
	// stopped is set on shutdown; pending grace timers then do nothing.
	stopped bool

	// signals fanned out to local connections (stats)
	typingN, presenceN, viewersN atomic.Int64
}

func (s *signals) counts() (typing, presence, viewers int64) {
	return s.typingN.Load(), s.presenceN.Load(), s.viewersN.Load()
}

type wsSig struct {
	conns   map[*conn]struct{}
	users   map[string]*localUser     // users with a local connection (or in their grace period)
	viewing map[string]map[string]int // conversation → user → local connections viewing it
	nodes   map[string]*nodeState     // other nodes' state
	typing  map[typingKey]time.Time   // deadlines of typing users (all nodes)
}

type localUser struct {
	conns  int
	status string
	at     int64 // unix nanoseconds of the status choice; the latest choice wins across nodes
	grace  *time.Timer
}

type nodeState struct {
	users   map[string]presenceEntry
	viewing map[string]map[string]struct{}
	seen    time.Time
}

type presenceEntry struct {
	Status string `json:"s"`
	At     int64  `json:"t"`
}

type typingKey struct{ conv, user string }

// sigMsg is a signal on the bus.
type sigMsg struct {
	Type    string                   `json:"type"` // presence|status|viewing|typing|state|hello|bye
	Node    string                   `json:"node"`
	WS      string                   `json:"ws,omitempty"`
	User    string                   `json:"user,omitempty"`
	Status  string                   `json:"status,omitempty"`
	At      int64                    `json:"at,omitempty"`
	Conv    string                   `json:"conv,omitempty"`
	On      bool                     `json:"on,omitempty"`
	Users   map[string]presenceEntry `json:"users,omitempty"`
	Viewing map[string][]string      `json:"viewing,omitempty"`
}

func newSignals(h *Hub) *signals { return &signals{h: h, ws: map[string]*wsSig{}} }

func (s *signals) getLocked(wsID string) *wsSig {
	w := s.ws[wsID]
	if w == nil {
		w = &wsSig{
			conns: map[*conn]struct{}{}, users: map[string]*localUser{},
			viewing: map[string]map[string]int{}, nodes: map[string]*nodeState{},
			typing: map[typingKey]time.Time{},
		}
		s.ws[wsID] = w
	}
	return w
}

func (s *signals) publish(wsID string, m sigMsg) {
	m.Node = s.h.node
	subject := subjectNodes
	if wsID != "" {
		m.WS = wsID
		subject = SignalsSubject(wsID)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.h.bus.Publish(ctx, subject, b); err != nil {
		s.h.log.Debug("realtime: publish signal", "type", m.Type, "err", err)
	}
}

// statusLocked is the merged presence of user: the latest status choice among
// the nodes where the user is present.
func statusLocked(w *wsSig, user string) (string, bool) {
	var best presenceEntry
	found := false
	consider := func(e presenceEntry) {
		if !found || e.At > best.At || (e.At == best.At && e.Status > best.Status) {
			best, found = e, true
		}
	}
	if lu := w.users[user]; lu != nil {
		consider(presenceEntry{lu.status, lu.at})
	}
	for _, n := range w.nodes {
		if e, ok := n.users[user]; ok {
			consider(e)
		}
	}
	return best.Status, found
}

func viewersLocked(w *wsSig, conv string) []string {
	set := map[string]struct{}{}
	for u := range w.viewing[conv] {
		set[u] = struct{}{}
	}
	for _, n := range w.nodes {
		for u := range n.viewing[conv] {
			set[u] = struct{}{}
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

func presenceMapLocked(w *wsSig) map[string]string {
	out := map[string]string{}
	for u := range w.users {
		out[u], _ = statusLocked(w, u)
	}
	for _, n := range w.nodes {
		for u := range n.users {
			out[u], _ = statusLocked(w, u)
		}
	}
	return out
}

func viewersMapLocked(w *wsSig) map[string][]string {
	convs := map[string]struct{}{}
	for c := range w.viewing {
		convs[c] = struct{}{}
	}
	for _, n := range w.nodes {
		for c := range n.viewing {
			convs[c] = struct{}{}
		}
	}
	out := map[string][]string{}
	for c := range convs {
		if v := viewersLocked(w, c); len(v) > 0 {
			out[c] = v
		}
	}
	return out
}

// sendAllLocked encodes v once and queues it for the workspace's local
// connections (except skipUser's).
func (s *signals) sendAllLocked(w *wsSig, v any, skipUser string) {
	if len(w.conns) == 0 {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	shared := [][]byte{textFrame(b)}
	for c := range w.conns {
		if skipUser != "" && c.p.UserID == skipUser {
			continue
		}
		c.enqueue(shared)
	}
}

func (s *signals) broadcastPresenceLocked(w *wsSig, user string) {
	st, ok := statusLocked(w, user)
	if !ok {
		st = StatusOffline
	}
	s.presenceN.Add(1)
	s.sendAllLocked(w, presenceFrame{Type: FramePresence, UserID: user, Status: st}, "")
}

func (s *signals) broadcastViewersLocked(w *wsSig, conv string) {
	s.viewersN.Add(1)
	s.sendAllLocked(w, viewersFrame{Type: FrameViewers, ConversationID: conv, UserIDs: viewersLocked(w, conv)}, "")
}

// diffLocked runs mutate and broadcasts the presence of users and the
// viewers of convs whose merged value changed.
func (s *signals) diffLocked(w *wsSig, users, convs []string, mutate func()) {
	type pst struct {
		s  string
		ok bool
	}
	beforeU := make([]pst, len(users))
	for i, u := range users {
		st, ok := statusLocked(w, u)
		beforeU[i] = pst{st, ok}
	}
	beforeC := make([][]string, len(convs))
	for i, c := range convs {
		beforeC[i] = viewersLocked(w, c)
	}
	mutate()
	for i, u := range users {
		st, ok := statusLocked(w, u)
		if (pst{st, ok}) != beforeU[i] {
			s.broadcastPresenceLocked(w, u)
		}
	}
	for i, c := range convs {
		if !slices.Equal(viewersLocked(w, c), beforeC[i]) {
			s.broadcastViewersLocked(w, c)
		}
	}
}

func (s *signals) now() int64 { return time.Now().UnixNano() }

// connect registers c and returns its hello frame (with the presence and
// viewers snapshot it is consistent with).
func (s *signals) connect(c *conn, cursor, initial string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	wsID, u := c.p.WorkspaceID, c.p.UserID
	w := s.getLocked(wsID)
	lu := w.users[u]
	if lu == nil {
		s.diffLocked(w, []string{u}, nil, func() {
			st, at := "", int64(0)
			if cur, ok := statusLocked(w, u); ok {
				st = cur
				for _, n := range w.nodes {
					if e, ok := n.users[u]; ok && e.Status == cur && e.At > at {
						at = e.At
					}
				}
			} else {
				st, at = initial, s.now()
				if !validStatus(st) {
					st = StatusOnline
				}
			}
			lu = &localUser{status: st, at: at}
			w.users[u] = lu
			s.publish(wsID, sigMsg{Type: "presence", User: u, Status: st, At: at})
		})
	}
	lu.conns++
	if lu.grace != nil {
		lu.grace.Stop()
		lu.grace = nil
	}
	w.conns[c] = struct{}{}
	b, _ := json.Marshal(helloFrame{
		Type: FrameHello, Cursor: cursor, UserID: u, Node: s.h.node,
		HeartbeatSeconds:  s.h.opts.HeartbeatInterval.Seconds(),
		TypingTimeoutSecs: s.h.opts.TypingTimeout.Seconds(),
		Presence:          presenceMapLocked(w), Viewers: viewersMapLocked(w),
	})
	return b
}

// disconnect unregisters c: its viewing and typing end now, its user's
// presence ends after the grace period if no other local connection remains.
func (s *signals) disconnect(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wsID, u := c.p.WorkspaceID, c.p.UserID
	w := s.ws[wsID]
	if w == nil {
		return
	}
	delete(w.conns, c)
	if c.viewing != "" {
		s.viewLocked(w, c, "")
	}
	for conv := range c.typing {
		s.publish(wsID, sigMsg{Type: "typing", User: u, Conv: conv, On: false})
		s.applyTypingLocked(w, conv, u, false)
	}
	c.typing = nil
	lu := w.users[u]
	if lu == nil {
		return
	}
	lu.conns--
	if lu.conns > 0 {
		return
	}
	if s.h.opts.PresenceGrace <= 0 || s.stopped {
		s.userGoneLocked(w, wsID, u)
		return
	}
	lu.grace = time.AfterFunc(s.h.opts.PresenceGrace, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopped || w.users[u] != lu || lu.conns > 0 {
			return
		}
		s.userGoneLocked(w, wsID, u)
	})
}

func (s *signals) userGoneLocked(w *wsSig, wsID, u string) {
	s.diffLocked(w, []string{u}, nil, func() {
		delete(w.users, u)
		s.publish(wsID, sigMsg{Type: "presence", User: u, Status: StatusOffline, At: s.now()})
	})
}

// setStatus records a status chosen by a connected user.
func (s *signals) setStatus(c *conn, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.ws[c.p.WorkspaceID]
	if w == nil {
		return
	}
	s.setLocalStatusLocked(w, c.p.WorkspaceID, c.p.UserID, status)
}

func (s *signals) setLocalStatusLocked(w *wsSig, wsID, u, status string) bool {
	lu := w.users[u]
	if lu == nil {
		return false
	}
	s.diffLocked(w, []string{u}, nil, func() {
		at := s.now()
		for _, n := range w.nodes {
			if e, ok := n.users[u]; ok && e.At >= at {
				at = e.At + 1
			}
		}
		if lu.at >= at {
			at = lu.at + 1
		}
		lu.status, lu.at = status, at
		s.publish(wsID, sigMsg{Type: "presence", User: u, Status: status, At: at})
	})
	return true
}

// SetPresence sets the status of a user in a workspace (for example after
// PATCH /me availability). It only has an effect while the user is connected
// somewhere; every node holding the user adopts it.
func (h *Hub) SetPresence(wsID, userID, status string) {
	if !validStatus(status) || !validToken(wsID) {
		return
	}
	s := h.sig
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.ws[wsID]
	if w == nil || !s.setLocalStatusLocked(w, wsID, userID, status) {
		s.publish(wsID, sigMsg{Type: "status", User: userID, Status: status, At: s.now()})
	}
}

func (s *signals) view(c *conn, conv string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.ws[c.p.WorkspaceID]; w != nil {
		s.viewLocked(w, c, conv)
	}
}

func (s *signals) viewLocked(w *wsSig, c *conn, conv string) {
	old := c.viewing
	if old == conv {
		return
	}
	c.viewing = conv
	wsID, u := c.p.WorkspaceID, c.p.UserID
	if old != "" {
		m := w.viewing[old]
		if m[u]--; m[u] <= 0 {
			s.diffLocked(w, nil, []string{old}, func() {
				delete(m, u)
				if len(m) == 0 {
					delete(w.viewing, old)
				}
				s.publish(wsID, sigMsg{Type: "viewing", User: u, Conv: old, On: false})
			})
		}
	}
	if conv != "" {
		m := w.viewing[conv]
		if m[u] > 0 {
			m[u]++
			return
		}
		s.diffLocked(w, nil, []string{conv}, func() {
			if m == nil {
				m = map[string]int{}
				w.viewing[conv] = m
			}
			m[u] = 1
			s.publish(wsID, sigMsg{Type: "viewing", User: u, Conv: conv, On: true})
		})
	}
}

func (s *signals) typing(c *conn, conv string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.ws[c.p.WorkspaceID]
	if w == nil {
		return
	}
	if on {
		if c.typing == nil {
			c.typing = map[string]struct{}{}
		}
		c.typing[conv] = struct{}{}
	} else {
		delete(c.typing, conv)
	}
	s.publish(c.p.WorkspaceID, sigMsg{Type: "typing", User: c.p.UserID, Conv: conv, On: on})
	s.applyTypingLocked(w, conv, c.p.UserID, on)
}

func (s *signals) applyTypingLocked(w *wsSig, conv, user string, on bool) {
	k := typingKey{conv, user}
	_, had := w.typing[k]
	if on {
		w.typing[k] = time.Now().Add(s.h.opts.TypingTimeout)
		if !had {
			s.typingN.Add(1)
			s.sendAllLocked(w, typingFrame{Type: FrameTyping, ConversationID: conv, UserID: user, State: "on"}, user)
		}
		return
	}
	if had {
		delete(w.typing, k)
		s.typingN.Add(1)
		s.sendAllLocked(w, typingFrame{Type: FrameTyping, ConversationID: conv, UserID: user, State: "off"}, user)
	}
}

func (s *signals) typingTick() time.Duration {
	d := s.h.opts.TypingTimeout / 5
	if d < 20*time.Millisecond {
		d = 20 * time.Millisecond
	}
	return d
}

// sweepTyping expires typing signals that were neither refreshed nor turned off.
func (s *signals) sweepTyping() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.ws {
		for k, dl := range w.typing {
			if now.After(dl) {
				delete(w.typing, k)
				s.typingN.Add(1)
				s.sendAllLocked(w, typingFrame{Type: FrameTyping, ConversationID: k.conv, UserID: k.user, State: "off"}, k.user)
			}
		}
	}
}

func (s *signals) nodeLocked(w *wsSig, id string) *nodeState {
	n := w.nodes[id]
	if n == nil {
		n = &nodeState{users: map[string]presenceEntry{}, viewing: map[string]map[string]struct{}{}}
		w.nodes[id] = n
	}
	n.seen = time.Now()
	return n
}

func (s *signals) dropEmptyNodeLocked(w *wsSig, id string) {
	if n := w.nodes[id]; n != nil && len(n.users) == 0 && len(n.viewing) == 0 {
		delete(w.nodes, id)
	}
}

// onBus handles a workspace signal from another node.
func (s *signals) onBus(data []byte) {
	var m sigMsg
	if json.Unmarshal(data, &m) != nil || m.Node == s.h.node || !validToken(m.WS) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	w := s.getLocked(m.WS)
	switch m.Type {
	case "presence":
		if m.User == "" {
			return
		}
		s.diffLocked(w, []string{m.User}, nil, func() {
			n := s.nodeLocked(w, m.Node)
			if m.Status == StatusOffline {
				delete(n.users, m.User)
				s.dropEmptyNodeLocked(w, m.Node)
				return
			}
			if !validStatus(m.Status) {
				return
			}
			n.users[m.User] = presenceEntry{m.Status, m.At}
			if lu := w.users[m.User]; lu != nil && m.At > lu.at {
				lu.status, lu.at = m.Status, m.At
			}
		})
	case "status":
		if lu := w.users[m.User]; lu != nil && validStatus(m.Status) && m.At > lu.at {
			s.setLocalStatusLocked(w, m.WS, m.User, m.Status)
		}
	case "viewing":
		if m.User == "" || m.Conv == "" {
			return
		}
		s.diffLocked(w, nil, []string{m.Conv}, func() {
			n := s.nodeLocked(w, m.Node)
			if m.On {
				if n.viewing[m.Conv] == nil {
					n.viewing[m.Conv] = map[string]struct{}{}
				}
				n.viewing[m.Conv][m.User] = struct{}{}
				return
			}
			delete(n.viewing[m.Conv], m.User)
			if len(n.viewing[m.Conv]) == 0 {
				delete(n.viewing, m.Conv)
			}
			s.dropEmptyNodeLocked(w, m.Node)
		})
	case "typing":
		if m.User != "" && m.Conv != "" {
			s.applyTypingLocked(w, m.Conv, m.User, m.On)
		}
	case "state":
		s.replaceNodeLocked(w, m.Node, m.Users, m.Viewing)
	}
}

// replaceNodeLocked replaces (or with nil maps removes) the state of a node.
func (s *signals) replaceNodeLocked(w *wsSig, node string, users map[string]presenceEntry, viewing map[string][]string) {
	old := w.nodes[node]
	affU := map[string]struct{}{}
	affC := map[string]struct{}{}
	if old != nil {
		for u := range old.users {
			affU[u] = struct{}{}
		}
		for c := range old.viewing {
			affC[c] = struct{}{}
		}
	}
	for u := range users {
		affU[u] = struct{}{}
	}
	for c := range viewing {
		affC[c] = struct{}{}
	}
	s.diffLocked(w, keys(affU), keys(affC), func() {
		if len(users) == 0 && len(viewing) == 0 {
			delete(w.nodes, node)
			return
		}
		n := &nodeState{users: map[string]presenceEntry{}, viewing: map[string]map[string]struct{}{}, seen: time.Now()}
		for u, e := range users {
			if validStatus(e.Status) {
				n.users[u] = e
				if lu := w.users[u]; lu != nil && e.At > lu.at {
					lu.status, lu.at = e.Status, e.At
				}
			}
		}
		for c, us := range viewing {
			m := map[string]struct{}{}
			for _, u := range us {
				m[u] = struct{}{}
			}
			n.viewing[c] = m
		}
		w.nodes[node] = n
	})
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// onNodes handles node announcements: a new node asks for everyone's state,
// a departing node's state is dropped at once.
func (s *signals) onNodes(data []byte) {
	var m sigMsg
	if json.Unmarshal(data, &m) != nil || m.Node == s.h.node {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	switch m.Type {
	case "hello":
		for wsID, w := range s.ws {
			s.publishStateLocked(wsID, w)
		}
	case "bye":
		for _, w := range s.ws {
			if w.nodes[m.Node] != nil {
				s.replaceNodeLocked(w, m.Node, nil, nil)
			}
		}
	}
}

func (s *signals) publishStateLocked(wsID string, w *wsSig) {
	if len(w.users) == 0 && len(w.viewing) == 0 {
		return
	}
	m := sigMsg{Type: "state", Users: map[string]presenceEntry{}, Viewing: map[string][]string{}}
	for u, lu := range w.users {
		m.Users[u] = presenceEntry{lu.status, lu.at}
	}
	for c, us := range w.viewing {
		for u := range us {
			m.Viewing[c] = append(m.Viewing[c], u)
		}
	}
	s.publish(wsID, m)
}

// heartbeat republishes this node's state, expires silent nodes and forgets
// idle workspaces.
func (s *signals) heartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	deadline := time.Now().Add(-3 * s.h.opts.NodeHeartbeat)
	for wsID, w := range s.ws {
		s.publishStateLocked(wsID, w)
		for id, n := range w.nodes {
			if n.seen.Before(deadline) {
				s.h.log.Info("realtime: node silent, dropping its presence", "node", id, "ws", wsID)
				s.replaceNodeLocked(w, id, nil, nil)
			}
		}
		if len(w.conns) == 0 && len(w.users) == 0 && len(w.nodes) == 0 && len(w.typing) == 0 && len(w.viewing) == 0 {
			delete(s.ws, wsID)
		}
	}
}

func (s *signals) announce() { s.publish("", sigMsg{Type: "hello"}) }

func (s *signals) goodbye() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for _, w := range s.ws {
		for _, lu := range w.users {
			if lu.grace != nil {
				lu.grace.Stop()
			}
		}
	}
	s.publish("", sigMsg{Type: "bye"})
}

// Presence returns the merged presence of a workspace: user id → status for
// every user connected on any node (offline users are absent).
func (h *Hub) Presence(wsID string) map[string]string {
	h.sig.mu.Lock()
	defer h.sig.mu.Unlock()
	w := h.sig.ws[wsID]
	if w == nil {
		return map[string]string{}
	}
	return presenceMapLocked(w)
}

// Viewers returns the sorted ids of the users viewing a conversation on any node.
func (h *Hub) Viewers(wsID, conversationID string) []string {
	h.sig.mu.Lock()
	defer h.sig.mu.Unlock()
	w := h.sig.ws[wsID]
	if w == nil {
		return []string{}
	}
	return viewersLocked(w, conversationID)
}
