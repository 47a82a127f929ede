package store

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/parleyhq/parley/internal/inbox"
)

// newID makes a UUIDv7 string.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// ts stores a time as unix microseconds (UTC).
func ts(t time.Time) int64 { return t.UTC().UnixMicro() }

// tsPtr stores an optional time (NULL when nil or zero).
func tsPtr(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return ts(*t)
}

// fromTS reads a stored time.
func fromTS(v int64) time.Time { return time.UnixMicro(v).UTC() }

// fromNullTS reads an optional stored time.
func fromNullTS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromTS(v.Int64)
	return &t
}

// jsonText encodes v as JSON text for a TEXT/jsonb column; nil maps become {} or [] per empty.
func jsonText(v any, empty string) string {
	if v == nil {
		return empty
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return empty
	}
	return string(b)
}

// jsonNull encodes v for a nullable JSON column.
func jsonNull(v any) any {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil
	}
	return string(b)
}

// decodeJSON decodes a stored JSON value into dst, ignoring empty input.
func decodeJSON(src []byte, dst any) error {
	if len(src) == 0 {
		return nil
	}
	return json.Unmarshal(src, dst)
}

// nullStr maps "" to NULL.
func nullStr(s *string) any {
	if s == nil || *s == "" {
		return nil
	}
	return *s
}

// strPtr reads a nullable text column.
func strPtr(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// encodeCursor makes an opaque keyset cursor from a time and an id.
func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "|" + id))
}

// decodeCursor reads a cursor made by encodeCursor.
func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", inbox.FieldError("bad cursor", map[string]string{"cursor": "is not a valid cursor"})
	}
	a, id, ok := strings.Cut(string(b), "|")
	v, err := strconv.ParseInt(a, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", inbox.FieldError("bad cursor", map[string]string{"cursor": "is not a valid cursor"})
	}
	return v, id, nil
}

// likePattern makes a case-insensitive substring LIKE pattern (escape char \).
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(q)) + "%"
}

// notFound is the NotFound error of one kind of thing.
func notFound(what string) error { return inbox.Errorf(inbox.NotFound, "%s not found", what) }

// noRows maps sql.ErrNoRows to a NotFound error for what.
func noRows(err error, what string) error {
	if err == sql.ErrNoRows {
		return notFound(what)
	}
	return err
}

func clampLimit(n, def, max int) int {
	if n <= 0 {
		return def
	}
	if n > max {
		return max
	}
	return n
}

// strs makes a non-nil slice for JSON ([] rather than null).
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
