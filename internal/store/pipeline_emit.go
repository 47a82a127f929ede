package store

import "github.com/parleyhq/parley/internal/inbox"

// The pipeline appends change rows through the store's own emitters so the
// change data is exactly the API JSON.

func plEmitContact(t *tx, wsID, id string) error      { return emitContact(t, wsID, id) }
func plEmitConversation(t *tx, wsID, id string) error { return emitConversation(t, wsID, id) }
func plEmitMessage(t *tx, wsID, id string) error      { return emitMessage(t, wsID, id) }

func plEmitChannel(t *tx, wsID, id string) error {
	c, err := getChannel(t, wsID, id)
	if err != nil {
		return err
	}
	return t.emit(wsID, inbox.EntityChannel, inbox.OpUpsert, id, c)
}
