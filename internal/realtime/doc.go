// Package realtime pushes every committed change and the ephemeral signals
// (typing, presence, viewers) to the operators' browsers over WebSocket, on
// every node, in order, without gaps and without duplicates.
//
// # Data flow
//
// The store calls Hub.PublishChanges after each commit; it publishes the
// commit's changes on the bus subject "parley.changes.<workspace>". Every
// node's Hub subscribes to that subject for the workspaces that have
// connections on the node (the node that committed included) and delivers
// the changes to its connections. The Bus is either in-process (MemoryBus,
// embedded deployment) or core NATS (NATSBus, cluster). Neither persists
// anything: the database's change log is the source of truth, and the hub
// repairs anything the bus loses:
//
//   - Per workspace the hub remembers the last seq it delivered. A change
//     with seq > last+1 is a gap (a lost message, or two nodes' publishes
//     arriving out of order); it is held, and if the late message has not
//     closed the gap within HubOptions.GapWait (default 20ms) the hub reads
//     the missing range from the ChangeSource (inbox.Store.Changes) before
//     delivering, so clients see seqs in order, each once. This relies on
//     the store's guarantee that when seq N is committed (and published),
//     every seq below N is committed too.
//   - A safety poll (HubOptions.PollInterval, default 5s) reads the change log
//     after the last delivered seq for workspaces with connections, catching
//     a trailing change whose publish was lost.
//
// Ephemeral signals travel on "parley.signals.<workspace>" and never touch
// the database. Each node owns the presence and viewing state of its own
// connections, publishes deltas when it changes and its full state every
// NodeHeartbeat; a node silent for three heartbeats (or that said "bye" on
// "parley.nodes") is dropped and its users go offline. A starting node says
// "hello" on "parley.nodes" and the others answer with their state.
//
// # WebSocket protocol
//
// GET /api/v1/workspaces/{ws}/ws?since=<cursor> (the HTTP layer authenticates
// and calls Hub.ServeWS). Browsers authenticate with the session cookie (the
// Origin must then be the same origin or an allowed one) or by offering the
// subprotocols ["parley.v1", "bearer.<token>"]; the server selects
// "parley.v1" (or echoes "bearer.<token>" when that is the only one offered)
// so the browser accepts the handshake. See BearerFromProtocols.
//
// The handler must call Hub.ServeWS after authentication; http.Server's own
// Shutdown does not see hijacked connections, so call Hub.Shutdown first.
// ServeWS returns as soon as the hello and the replay are written; the hub
// serves the connection from then on.
//
// On connect the server subscribes to the workspace's changes, then sends,
// in this order:
//
//  1. {"type":"hello","cursor":"<since as given>","user_id":"…","node":"…",
//     "heartbeat_seconds":25,"typing_timeout_seconds":6,
//     "presence":{"<user_id>":"online|away|busy"},
//     "viewers":{"<conversation_id>":["<user_id>",…]}}
//     — the presence and viewers snapshot that later presence/viewers frames update.
//  2. every change after since, then live changes, in seq order, each once:
//     {"type":"change","seq":N,"entity":"…","op":"upsert|delete","id":"…","data":{…},"at":"…"}
//     Everyone receives read_state changes of their own user only (a
//     read_state delete without data goes to everyone); agents never
//     receive admin-only entities (provider_account, api_token, token,
//     webhook, audit); otherwise data is never modified per user. So an agent may see seq jumps; the cursor to
//     resume from is the last seq seen.
//  3. signals at any time:
//     {"type":"typing","conversation_id","user_id","state":"on|off"} (not sent
//     to the typing user's own tabs; "off" is sent when the typist stops,
//     disconnects, or does not refresh "on" within the typing timeout),
//     {"type":"presence","user_id","status":"online|away|busy|offline"},
//     {"type":"viewers","conversation_id","user_ids":[…]} (the full set),
//     {"type":"pong"} in answer to a ping frame.
//
// Client frames: {"type":"typing","conversation_id","state":"on|off"} (resend
// "on" every few seconds while typing), {"type":"viewing","conversation_id"}
// ("" = viewing nothing), {"type":"presence","status":"online|away|busy"},
// {"type":"ping"}. Invalid frames are ignored.
//
// A user is present while they have a connection on any node and for
// PresenceGrace (default 10s) after the last one closes, so a reload or a
// short network drop does not flicker; several tabs count once. The status
// is the latest one chosen from any tab.
//
// # Close codes
//
//	4000 "slow consumer: resume from cursor" — the connection's bounded
//	     send queue (HubOptions.QueueSize) filled up. Reconnect with
//	     since=<last seq seen>; nothing is lost.
//	4001 "server restarting: reconnect" — graceful shutdown (Hub.Shutdown).
//	     Reconnect (with backoff) with since=<last seq seen>.
//	4002 "resync: take a new snapshot" — preceded by {"type":"resync"}: the
//	     cursor is older than the retained change log or unknown. Fetch
//	     GET /sync/snapshot and reconnect with its cursor.
//	1011 internal error (the change log could not be read); 1013 try again
//	     later (the bus is unavailable). Reconnect with backoff.
//
// Any other end of the connection (network drop, a peer that stops answering
// the server's WebSocket pings within HeartbeatInterval) is also resumed from
// the cursor. Package client implements this loop and is the reference for
// the web app's sync logic.
//
// # Costs
//
// A connection between events is one goroutine (its reader) and a few KiB
// of memory: small library buffers, a send queue that holds memory only
// while frames wait in it, no timer. Heartbeats are one hub-wide wheel that
// pings a slice of the connections at each tick. A fan-out encodes each
// WebSocket frame once per visibility class (admins, agents, and per user
// for read_state), queues the same bytes on every connection of the class,
// and a small writer pool writes each connection's batch with one
// non-blocking write; only a peer whose socket is full gets a goroutine of
// its own to finish the write (with HubOptions.WriteTimeout). See writer.go.
package realtime
