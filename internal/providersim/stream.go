package providersim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channel"
	"github.com/parleyhq/parley/internal/inbox"
	"github.com/parleyhq/parley/internal/providersim/metasim"
	"github.com/parleyhq/parley/internal/providersim/telegramsim"
	"github.com/parleyhq/parley/internal/providersim/twiliosim"
	"github.com/parleyhq/parley/internal/providersim/wappisim"
)

// Delivery is one inbound webhook the stream produced.
type Delivery struct {
	Seq       int
	ChannelID string
	Kind      string
	Network   string // wappi network
	Action    string // text|reply|image|document|voice|location|contact|reaction|unreaction|edit|batch
	Group     bool
	ChatID    string
	Body      []byte // JSON, or form-encoded for Twilio
	// Expect are the event types the channel adapter's Parse must produce, in order.
	Expect []channel.EventType
	// MediaKind is the attachment kind expected (inbox.Kind*), "" when none.
	MediaKind string
}

type person struct {
	first, last string
	phone       string // digits, no +
	tgID        int64
	psid        string
}

func (p *person) name() string { return strings.TrimSpace(p.first + " " + p.last) }

type msgRef struct {
	id      string // provider message id
	num     int64  // Telegram message_id
	by      int    // member index
	emoji   string // current reaction by reactor
	reactor int
}

type chatState struct {
	id      string
	group   bool
	title   string
	tgChat  telegramsim.Chat
	members []*person
	history []*msgRef
	nextNum int64
}

type simChan struct {
	reg   RegisteredChannel
	net   string
	chats []*chatState
}

// Stream generates a deterministic sequence of realistic inbound webhooks
// for the channels registered on a Server, registering the media each
// message refers to on the Server so Parley can fetch it. The same seed, the
// same registrations and the same clock give the same sequence.
type Stream struct {
	srv      *Server
	rng      *rand.Rand
	now      func() time.Time
	chans    []*simChan
	seq      int
	updateID int64
	tick     time.Duration
	png      *png.Encoder
}

// NewStream starts a stream over the channels registered on srv. now is the
// clock for payload timestamps (time.Now when nil); each message advances a
// virtual offset by a second so timestamps stay increasing.
func (s *Server) NewStream(seed int64, now func() time.Time) *Stream {
	if now == nil {
		now = time.Now
	}
	st := &Stream{srv: s, rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)), now: now,
		png: &png.Encoder{BufferPool: &onePool{}}}
	st.updateID = 100000000 + int64(st.rng.IntN(1e8))
	for _, reg := range s.Channels() {
		c := &simChan{reg: reg, net: reg.str("network")}
		if c.reg.Kind == KindWappi && c.net == "" {
			c.net = "whatsapp"
		}
		for range 4 {
			c.chats = append(c.chats, st.newDirect(c))
		}
		if st.groups(c) {
			for range 2 {
				c.chats = append(c.chats, st.newGroup(c))
			}
		}
		st.chans = append(st.chans, c)
	}
	return st
}

func (st *Stream) groups(c *simChan) bool {
	return c.reg.Kind == KindTelegram || c.reg.Kind == KindWappi
}

func (st *Stream) newPerson() *person {
	n := pick(st.rng, names)
	p := &person{first: n[0], last: n[1]}
	p.phone = pick(st.rng, []string{"1555", "7916", "4917", "5511", "4477", "3466"}) + digits(st.rng, 7)
	p.tgID = 100000000 + int64(st.rng.IntN(7e9))
	p.psid = digits(st.rng, 16)
	return p
}

func (st *Stream) newDirect(c *simChan) *chatState {
	p := st.newPerson()
	ch := &chatState{members: []*person{p}, nextNum: 1 + int64(st.rng.IntN(500))}
	switch c.reg.Kind {
	case KindWhatsApp, KindTwilio:
		ch.id = p.phone
	case KindMessenger, KindInstagram:
		ch.id = p.psid
		pic := st.srv.PutMedia("avatar-"+p.psid+".png", pngBytes(st.rng, st.png), "image/png", "")
		prof := map[string]any{"first_name": p.first, "last_name": p.last, "profile_pic": pic}
		if c.reg.Kind == KindInstagram {
			prof = map[string]any{"name": p.name(), "username": fmt.Sprintf("user_%s", p.psid[:6]), "profile_pic": pic}
		}
		st.srv.meta.SetProfile(p.psid, prof)
	case KindTelegram:
		ch.id = strconv.FormatInt(p.tgID, 10)
		ch.tgChat = telegramsim.Chat{ID: p.tgID, Type: "private"}
	case KindWappi:
		switch c.net {
		case "whatsapp":
			ch.id = p.phone + "@c.us"
		case "max":
			ch.id = "-" + strconv.FormatInt(p.tgID, 10)
		default:
			ch.id = strconv.FormatInt(p.tgID, 10)
		}
	case KindAPI:
		ch.id = "cust-" + hexN(st.rng, 10)
	}
	return ch
}

func (st *Stream) newGroup(c *simChan) *chatState {
	g := &chatState{group: true, title: pick(st.rng, groupTitles), nextNum: 1 + int64(st.rng.IntN(5000))}
	for range 3 + st.rng.IntN(4) {
		g.members = append(g.members, st.newPerson())
	}
	switch {
	case c.reg.Kind == KindTelegram:
		id := -1000000000000 - int64(st.rng.IntN(1e9))
		g.id = strconv.FormatInt(id, 10)
		g.tgChat = telegramsim.Chat{ID: id, Type: "supergroup", Title: g.title}
	case c.net == "whatsapp":
		g.id = "120363" + digits(st.rng, 12) + "@g.us"
	default:
		g.id = "-100" + digits(st.rng, 10)
	}
	if c.reg.Kind == KindWappi {
		// Wappi webhooks carry no group title: it is in the chat list.
		if ws := st.srv.Wappi(c.reg.Secrets["api_token"]); ws != nil {
			ws.AddChat(c.reg.str("profile_id"), wappisim.Chat{ID: g.id, Name: g.title, Group: true})
		}
	}
	return g
}

// actions a chat supports, with weights.
func (st *Stream) actions(c *simChan, ch *chatState) []string {
	var a []string
	add := func(name string, w int) {
		for range w {
			a = append(a, name)
		}
	}
	hist := len(ch.history) > 0
	add("text", 8)
	switch c.reg.Kind {
	case KindWhatsApp:
		add("image", 2)
		add("document", 1)
		add("voice", 1)
		add("location", 1)
		add("contact", 1)
		add("batch", 1)
		if hist {
			add("reply", 2)
			add("reaction", 2)
		}
	case KindMessenger, KindInstagram:
		add("image", 2)
		if hist {
			add("reply", 2)
			add("reaction", 2)
			if c.reg.Kind == KindMessenger {
				add("edit", 1)
			}
		}
	case KindTelegram:
		add("image", 2)
		add("document", 1)
		add("voice", 1)
		add("location", 1)
		add("contact", 1)
		if hist {
			add("reply", 2)
			add("edit", 1)
			if ch.group { // reactions are only observable in groups where the bot is admin
				add("reaction", 2)
			}
		}
	case KindTwilio:
		add("image", 1)
	case KindWappi:
		add("image", 2)
		if c.net == "whatsapp" {
			add("document", 1)
			add("voice", 1)
			add("location", 1)
			add("contact", 1)
			if hist {
				add("reaction", 2)
			}
		}
		if hist {
			add("reply", 2)
			add("edit", 1)
		}
	case KindAPI:
		add("image", 1)
		if hist {
			add("reply", 1)
		}
	}
	return a
}

// Next returns the next webhook. It never returns an empty delivery when at
// least one channel is registered; with none it returns ok=false.
func (st *Stream) Next() (Delivery, bool) {
	if len(st.chans) == 0 {
		return Delivery{}, false
	}
	st.seq++
	st.tick += time.Duration(1+st.rng.IntN(3)) * time.Second
	c := st.chans[st.rng.IntN(len(st.chans))]
	var ch *chatState
	if st.rng.IntN(10) == 0 && len(c.chats) < 400 {
		ch = st.newDirect(c) // a new customer arrives
		c.chats = append(c.chats, ch)
	} else if st.groups(c) && st.rng.IntN(3) == 0 {
		ch = c.chats[4+st.rng.IntN(2)] // groups are busy: a third of the traffic
	} else {
		ch = c.chats[st.rng.IntN(len(c.chats))]
	}
	action := pick(st.rng, st.actions(c, ch))
	if action == "reaction" {
		// with a reaction in place, sometimes take it back
		if st.reacted(ch) != nil && st.rng.IntN(2) == 0 {
			action = "unreaction"
		}
	}
	d := Delivery{Seq: st.seq, ChannelID: c.reg.ID, Kind: c.reg.Kind, Network: c.net, Action: action, Group: ch.group, ChatID: ch.id}
	switch c.reg.Kind {
	case KindWhatsApp:
		st.whatsapp(c, ch, &d)
	case KindMessenger, KindInstagram:
		st.messaging(c, ch, &d)
	case KindTelegram:
		st.telegram(c, ch, &d)
	case KindTwilio:
		st.twilio(c, ch, &d)
	case KindWappi:
		st.wappi(c, ch, &d)
	case KindAPI:
		st.api(c, ch, &d)
	}
	if len(ch.history) > 30 {
		ch.history = ch.history[len(ch.history)-30:]
	}
	return d, true
}

func (st *Stream) at() time.Time { return st.now().Add(st.tick).UTC() }

func (st *Stream) sender(ch *chatState) int { return st.rng.IntN(len(ch.members)) }

func (st *Stream) target(ch *chatState) *msgRef {
	if len(ch.history) == 0 {
		return nil
	}
	return ch.history[len(ch.history)-1-st.rng.IntN(min(len(ch.history), 8))]
}

// reacted returns a message carrying a reaction (for removals).
func (st *Stream) reacted(ch *chatState) *msgRef {
	for i := len(ch.history) - 1; i >= 0; i-- {
		if ch.history[i].emoji != "" {
			return ch.history[i]
		}
	}
	return nil
}

func (st *Stream) text() string { return pick(st.rng, texts) }

func msg(t ...channel.EventType) []channel.EventType { return t }

// ---- WhatsApp Cloud API ----

func (st *Stream) wamid() string {
	b := make([]byte, 30)
	for i := range b {
		b[i] = byte(st.rng.IntN(256))
	}
	return "wamid." + base64.StdEncoding.EncodeToString(b)
}

func (st *Stream) whatsapp(c *simChan, ch *chatState, d *Delivery) {
	p := ch.members[0]
	sec := st.at().Unix()
	id := st.wamid()
	var msgs []metasim.M
	d.Expect = msg(channel.EventMessage)
	record := true
	switch d.Action {
	case "text":
		msgs = append(msgs, metasim.WAText(p.phone, id, sec, st.text()))
	case "batch":
		id2 := st.wamid()
		msgs = append(msgs, metasim.WAText(p.phone, id, sec, st.text()), metasim.WAText(p.phone, id2, sec, st.text()))
		d.Expect = msg(channel.EventMessage, channel.EventMessage)
		ch.history = append(ch.history, &msgRef{id: id2})
	case "reply":
		t := st.target(ch)
		msgs = append(msgs, metasim.WithContext(metasim.WAText(p.phone, id, sec, st.text()), c.reg.OwnID, t.id, false))
	case "image":
		mid := st.srv.meta.AddMedia(pngBytes(st.rng, st.png), "image/png")
		msgs = append(msgs, metasim.WAMedia(p.phone, id, sec, "image", mid, "image/png", st.caption(), ""))
		d.MediaKind = inbox.KindImage
	case "document":
		doc := pick(st.rng, documents)
		mid := st.srv.meta.AddMedia(docBytes(st.rng, doc.name, doc.mime), doc.mime)
		msgs = append(msgs, metasim.WAMedia(p.phone, id, sec, "document", mid, doc.mime, "", doc.name))
		d.MediaKind = inbox.KindDocument
	case "voice":
		mid := st.srv.meta.AddMedia(oggBytes(st.rng), "audio/ogg; codecs=opus")
		msgs = append(msgs, metasim.WAVoice(p.phone, id, sec, mid))
		d.MediaKind = inbox.KindVoice
	case "location":
		pl := pick(st.rng, places)
		msgs = append(msgs, metasim.WALocation(p.phone, id, sec, pl.lat, pl.lng, pl.name, pl.address))
	case "contact":
		o := st.newPerson()
		msgs = append(msgs, metasim.WAContactCard(p.phone, id, sec, o.name(), "+"+o.phone, o.phone))
	case "reaction":
		t := st.target(ch)
		t.emoji = pick(st.rng, emojis)
		msgs = append(msgs, metasim.WAReaction(p.phone, id, sec, t.id, t.emoji))
		d.Expect, record = msg(channel.EventReaction), false
	case "unreaction":
		t := st.reacted(ch)
		t.emoji = ""
		msgs = append(msgs, metasim.WAReaction(p.phone, id, sec, t.id, ""))
		d.Expect, record = msg(channel.EventReaction), false
	}
	if record {
		ch.history = append(ch.history, &msgRef{id: id})
	}
	st.srv.meta.TouchInbound(p.phone, time.Now())
	d.Body = metasim.WhatsAppPayload(metasim.WAEntry{WABAID: c.reg.str("waba_id"), Values: []metasim.WAValue{{
		PhoneNumberID: c.reg.str("phone_number_id"), DisplayPhone: c.reg.OwnID,
		Contacts: []metasim.WAContact{{WaID: p.phone, Name: p.name()}}, Messages: msgs,
	}}})
}

func (st *Stream) caption() string {
	if st.rng.IntN(2) == 0 {
		return ""
	}
	return st.text()
}

// ---- Messenger / Instagram ----

func (st *Stream) mid(ig bool) string {
	n := 24
	if ig {
		n = 120
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(st.rng.IntN(256))
	}
	if ig {
		return "aWdfZAG1faXRlbTox" + base64.RawURLEncoding.EncodeToString(b)
	}
	return "m_" + base64.RawURLEncoding.EncodeToString(b)
}

func (st *Stream) messaging(c *simChan, ch *chatState, d *Delivery) {
	ig := c.reg.Kind == KindInstagram
	object, own := "page", c.reg.str("page_id")
	if ig {
		object, own = "instagram", c.reg.str("account_id")
	}
	p := ch.members[0]
	ms := st.at().UnixMilli()
	mid := st.mid(ig)
	d.Expect = msg(channel.EventMessage)
	var ev metasim.M
	record := true
	switch d.Action {
	case "text":
		ev = metasim.MText(p.psid, own, mid, ms, st.text())
	case "reply":
		ev = metasim.MReplyText(p.psid, own, mid, ms, st.text(), st.target(ch).id)
	case "image":
		u := st.srv.PutMedia("cdn-"+mid[len(mid)-12:]+".png", pngBytes(st.rng, st.png), "image/png", "")
		ev = metasim.MAttachment(p.psid, own, mid, ms, "image", u)
		d.MediaKind = inbox.KindImage
	case "reaction":
		t := st.target(ch)
		t.emoji = "❤️"
		ev = metasim.MReaction(p.psid, own, ms, t.id, "react", "love", "❤️")
		d.Expect, record = msg(channel.EventReaction), false
	case "unreaction":
		t := st.reacted(ch)
		t.emoji = ""
		ev = metasim.MReaction(p.psid, own, ms, t.id, "unreact", "", "")
		d.Expect, record = msg(channel.EventReaction), false
	case "edit":
		t := st.target(ch)
		ev = metasim.MEdit(p.psid, own, t.id, ms, pick(st.rng, edits), 1)
		d.Expect, record = msg(channel.EventEdit), false
	}
	if record {
		ch.history = append(ch.history, &msgRef{id: mid})
	}
	st.srv.meta.TouchInbound(p.psid, time.Now())
	d.Body = metasim.MessagingPayload(object, metasim.MEntry{ID: own, Time: ms, Messaging: []metasim.M{ev}})
}

// ---- Telegram ----

func (st *Stream) telegram(c *simChan, ch *chatState, d *Delivery) {
	st.updateID++
	i := st.sender(ch)
	u := telegramsim.User{ID: ch.members[i].tgID, FirstName: ch.members[i].first, LastName: ch.members[i].last}
	if st.rng.IntN(3) == 0 {
		u.Username = fmt.Sprintf("u%d", u.ID%100000)
	}
	tg := st.srv.Telegram(c.reg.Secrets["bot_token"])
	date := st.at()
	m := telegramsim.Msg{UpdateID: st.updateID, Chat: ch.tgChat, From: &u, Date: date}
	d.Expect = msg(channel.EventMessage)
	addFile := func(prefix, path string, data []byte, mime string) string {
		id := prefix + base64.RawURLEncoding.EncodeToString([]byte(hexN(st.rng, 24)))
		if tg != nil {
			tg.AddFile(id, telegramsim.File{Path: path, MimeType: mime, Data: data})
		}
		return id
	}
	newMsg := func() {
		m.MessageID = ch.nextNum
		ch.nextNum++
		ch.history = append(ch.history, &msgRef{num: m.MessageID, by: i, id: strconv.FormatInt(m.MessageID, 10)})
	}
	switch d.Action {
	case "text":
		newMsg()
		m.Text = st.text()
	case "reply":
		m.ReplyTo = st.target(ch).num
		newMsg()
		m.Text = st.text()
	case "image":
		newMsg()
		n := st.rng.IntN(1e6)
		m.Extra = telegramsim.PhotoExtra(addFile("AgACAgI", fmt.Sprintf("photos/file_%d.png", n), pngBytes(st.rng, st.png), "image/png"), st.caption())
		d.MediaKind = inbox.KindImage
	case "document":
		newMsg()
		doc := pick(st.rng, documents)
		m.Extra = telegramsim.DocumentExtra(addFile("BQACAgI", fmt.Sprintf("documents/file_%d", st.rng.IntN(1e6)), docBytes(st.rng, doc.name, doc.mime), doc.mime), doc.name, doc.mime)
		d.MediaKind = inbox.KindDocument
	case "voice":
		newMsg()
		m.Extra = telegramsim.VoiceExtra(addFile("AwACAgI", fmt.Sprintf("voice/file_%d.oga", st.rng.IntN(1e6)), oggBytes(st.rng), "audio/ogg"), 1+st.rng.IntN(40))
		d.MediaKind = inbox.KindVoice
	case "location":
		newMsg()
		pl := pick(st.rng, places)
		m.Extra = map[string]any{"location": map[string]any{"latitude": pl.lat, "longitude": pl.lng}}
	case "contact":
		newMsg()
		o := st.newPerson()
		m.Extra = map[string]any{"contact": map[string]any{"phone_number": "+" + o.phone, "first_name": o.first, "last_name": o.last}}
	case "edit":
		t := st.target(ch)
		o := ch.members[t.by]
		m.From = &telegramsim.User{ID: o.tgID, FirstName: o.first, LastName: o.last}
		m.MessageID = t.num
		m.Text = pick(st.rng, edits)
		d.Body = telegramsim.EditUpdate(m, date.Add(30*time.Second))
		d.Expect = msg(channel.EventEdit)
		return
	case "reaction":
		t := st.target(ch)
		old := []string{}
		if t.emoji != "" && t.reactor == i {
			old = []string{t.emoji}
		}
		t.emoji, t.reactor = pick(st.rng, emojis), i
		d.Body = telegramsim.ReactionUpdate(st.updateID, ch.tgChat, u, t.num, date, old, []string{t.emoji})
		d.Expect = msg(channel.EventReaction)
		if len(old) > 0 { // replacing: the old one is removed first
			d.Expect = msg(channel.EventReaction, channel.EventReaction)
		}
		return
	case "unreaction":
		t := st.reacted(ch)
		o := ch.members[t.reactor]
		ru := telegramsim.User{ID: o.tgID, FirstName: o.first, LastName: o.last}
		d.Body = telegramsim.ReactionUpdate(st.updateID, ch.tgChat, ru, t.num, date, []string{t.emoji}, nil)
		t.emoji = ""
		d.Expect = msg(channel.EventReaction)
		return
	}
	d.Body = telegramsim.MessageUpdate(m)
}

// ---- Twilio ----

func (st *Stream) twilio(c *simChan, ch *chatState, d *Delivery) {
	p := ch.members[0]
	sid := c.reg.str("account_sid")
	in := twiliosim.Inbound{AccountSid: sid, MessageSid: "SM" + hexN(st.rng, 32), From: "+" + p.phone, To: c.reg.str("phone_number"), Body: st.text()}
	d.Expect = msg(channel.EventMessage)
	if d.Action == "image" {
		mm, me := "MM"+hexN(st.rng, 32), "ME"+hexN(st.rng, 32)
		in.MessageSid = mm
		st.srv.PutMedia(me, pngBytes(st.rng, st.png), "image/png", "")
		in.Media = []twiliosim.MediaItem{{URL: st.srv.BaseURL(KindTwilio) + "/2010-04-01/Accounts/" + sid + "/Messages/" + mm + "/Media/" + me, ContentType: "image/png"}}
		if st.rng.IntN(2) == 0 {
			in.Body = ""
		}
		d.MediaKind = inbox.KindImage
	}
	d.Body = []byte(twiliosim.InboundParams(in).Encode())
}

// ---- Wappi ----

func (st *Stream) wappiID(c *simChan, ch *chatState) string {
	if c.net == "whatsapp" {
		return "3EB0" + strings.ToUpper(hexN(st.rng, 16))
	}
	n := ch.nextNum
	ch.nextNum++
	return strconv.FormatInt(n, 10)
}

func (st *Stream) wappi(c *simChan, ch *chatState, d *Delivery) {
	pid := c.reg.str("profile_id")
	i := st.sender(ch)
	p := ch.members[i]
	id := st.wappiID(c, ch)
	m := wappisim.Msg{ProfileID: pid, Network: c.net, ID: id, Time: st.at(), SenderName: p.name(), ChatID: ch.id}
	switch c.net {
	case "whatsapp":
		m.From, m.To = p.phone+"@c.us", c.reg.OwnID+"@c.us"
	default:
		m.From, m.To = strconv.FormatInt(p.tgID, 10), c.reg.OwnID
		m.ChatType = "user"
		if ch.group {
			m.ChatType = "chat"
		}
		if c.net == "max" {
			g := ch.group
			m.IsGroup = &g
		}
	}
	d.Expect = msg(channel.EventMessage)
	record := true
	ws := st.srv.Wappi(c.reg.Secrets["api_token"])
	file := func(data []byte, mime, name string) {
		if c.net == "whatsapp" {
			if ws != nil {
				ws.AddFile(id, wappisim.File{Data: data, MimeType: mime, Name: name})
			}
			m.Body = wappisim.Thumbnail
		} else {
			m.FileLink = st.srv.PutMedia("wappi-"+pid+"-"+ch.id+"-"+id, data, mime, name)
		}
		m.MimeType, m.FileName = mime, name
	}
	switch d.Action {
	case "text":
		m.Body = st.text()
	case "reply":
		m.Body, m.IsReply, m.StanzaID = st.text(), true, st.target(ch).id
	case "image":
		m.Type = "image"
		file(pngBytes(st.rng, st.png), "image/png", "")
		m.Caption = st.caption()
		d.MediaKind = inbox.KindImage
	case "document":
		doc := pick(st.rng, documents)
		m.Type = "document"
		file(docBytes(st.rng, doc.name, doc.mime), doc.mime, doc.name)
		d.MediaKind = inbox.KindDocument
	case "voice":
		m.Type = "ptt"
		file(oggBytes(st.rng), "audio/ogg; codecs=opus", "")
		m.Extra = map[string]any{"media_info": map[string]any{"duration": 1 + st.rng.IntN(40)}}
		d.MediaKind = inbox.KindVoice
	case "location":
		pl := pick(st.rng, places)
		m.Type, m.Caption = "location", pl.name
		m.Extra = map[string]any{"latitude": pl.lat, "longitude": pl.lng}
	case "contact":
		o := st.newPerson()
		m.Type = "vcard"
		m.Body = "BEGIN:VCARD\nVERSION:3.0\nN:" + o.last + ";" + o.first + ";;;\nFN:" + o.name() + "\nitem1.TEL;waid=" + o.phone + ":+" + o.phone + "\nEND:VCARD"
	case "reaction":
		t := st.target(ch)
		t.emoji, t.reactor = pick(st.rng, emojis), i
		m.Type, m.Body, m.StanzaID = "reaction", t.emoji, t.id
		d.Expect, record = msg(channel.EventReaction), false
	case "unreaction":
		t := st.reacted(ch)
		o := ch.members[t.reactor]
		m.From, m.SenderName = o.phone+"@c.us", o.name()
		m.Type, m.Body, m.StanzaID = "reaction", "", t.id
		t.emoji = ""
		d.Expect, record = msg(channel.EventReaction), false
	case "edit":
		t := st.target(ch)
		o := ch.members[t.by]
		if c.net == "whatsapp" {
			m.From = o.phone + "@c.us"
		} else {
			m.From = strconv.FormatInt(o.tgID, 10)
		}
		m.SenderName, m.ID, m.Body, m.IsEdited = o.name(), t.id, pick(st.rng, edits), true
		d.Expect, record = msg(channel.EventEdit), false
	}
	if record {
		ch.history = append(ch.history, &msgRef{id: id, by: i})
	}
	st.srv.rememberWappiChat(pid, m.ID, ch.id)
	d.Body = wappisim.Incoming(m)
}

// ---- api channel ----

func (st *Stream) api(c *simChan, ch *chatState, d *Delivery) {
	p := ch.members[0]
	ext := "ext-" + hexN(st.rng, 16)
	body := map[string]any{
		"external_id": ext,
		"contact":     map[string]any{"identifier": ch.id, "name": p.name(), "email": strings.ToLower(ch.id) + "@example.com", "phone": "+" + p.phone},
		"text":        st.text(),
		"timestamp":   st.at().Format(time.RFC3339),
	}
	d.Expect = msg(channel.EventMessage)
	switch d.Action {
	case "reply":
		body["reply_to"] = st.target(ch).id
	case "image":
		u := st.srv.PutMedia("api-"+ext+".png", pngBytes(st.rng, st.png), "image/png", "photo.png")
		body["attachments"] = []any{map[string]any{"url": u, "mime_type": "image/png", "filename": "photo.png"}}
		d.MediaKind = inbox.KindImage
	}
	ch.history = append(ch.history, &msgRef{id: ext})
	d.Body, _ = json.Marshal(body)
}

// FormValues decodes a Twilio delivery body (helper for callers and tests).
func FormValues(d Delivery) url.Values {
	v, _ := url.ParseQuery(string(d.Body))
	return v
}
