package store

// lockRow takes the row lock of table's row id in workspace wsID before a
// read-modify-write, so that two concurrent patches of one row on PostgreSQL
// (READ COMMITTED) apply one after the other instead of one overwriting the
// other's fields. SQLite has one writer at a time and needs nothing. A missing
// row is left to the caller's own lookup to report.
func lockRow(t *tx, table, wsID, id string) error {
	if t.d.forUpdate() == "" {
		return nil
	}
	_, err := t.exec(`SELECT id FROM `+table+` WHERE workspace_id = ? AND id = ?`+t.d.forUpdate(), wsID, id)
	return err
}
