package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/parleyhq/parley/internal/inbox"
)

// ErrorBody is the JSON body of every non-2xx answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    inbox.Code        `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"` // always an object, {} when no field is at fault
}

// statusErr overrides the HTTP status of an error (sync's 410 conflict).
type statusErr struct {
	status int
	err    error
}

func (e *statusErr) Error() string { return e.err.Error() }
func (e *statusErr) Unwrap() error { return e.err }

// retryErr carries a Retry-After for rate_limited answers.
type retryErr struct {
	seconds int
	err     error
}

func (e *retryErr) Error() string { return e.err.Error() }
func (e *retryErr) Unwrap() error { return e.err }

var codeStatus = map[inbox.Code]int{
	inbox.Invalid:      http.StatusBadRequest,
	inbox.Unauthorized: http.StatusUnauthorized,
	inbox.Forbidden:    http.StatusForbidden,
	inbox.NotFound:     http.StatusNotFound,
	inbox.Conflict:     http.StatusConflict,
	inbox.TooLarge:     http.StatusRequestEntityTooLarge,
	inbox.RateLimited:  http.StatusTooManyRequests,
	inbox.Internal:     http.StatusInternalServerError,
}

// WriteError writes err as the API error body; only internal errors are logged as errors.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = inbox.Errorf(inbox.TooLarge, "request body exceeds %d bytes", mbe.Limit)
	}
	code := inbox.ErrorCode(err)
	status, ok := codeStatus[code]
	if !ok {
		code, status = inbox.Internal, http.StatusInternalServerError
	}
	var se *statusErr
	if errors.As(err, &se) {
		status = se.status
	}
	var re *retryErr
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", strconv.Itoa(re.seconds))
	}
	body := ErrorBody{Error: ErrorDetail{Code: code, Message: inbox.ErrorMessage(err), Fields: map[string]string{}}}
	var ie *inbox.Error
	if errors.As(err, &ie) && code != inbox.Internal && ie.Fields != nil {
		body.Error.Fields = ie.Fields
	}
	if code == inbox.Internal {
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "route", routeOf(r), "err", err)
	}
	writeJSON(w, status, body)
}

func routeOf(r *http.Request) string {
	if info, _ := r.Context().Value(reqInfoKey).(*reqInfo); info != nil {
		return info.route
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decode reads exactly one JSON object into v: unknown fields, wrong types,
// trailing data and an empty body are invalid (400) naming the field.
func decode(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return inbox.Errorf(inbox.Invalid, "a JSON request body is required")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return inbox.Errorf(inbox.Invalid, "the body must be a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return inbox.Errorf(inbox.TooLarge, "request body exceeds %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return inbox.Errorf(inbox.Invalid, "a JSON request body is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return inbox.Errorf(inbox.Invalid, "malformed JSON: unexpected end of body")
	case errors.As(err, &se):
		return inbox.Errorf(inbox.Invalid, "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return inbox.Errorf(inbox.Invalid, "the body must be a JSON object")
		}
		return inbox.FieldError("wrong type", map[string]string{te.Field: "must be " + jsonType(te.Type.String())})
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ := strconv.Unquote(f)
		if name == "" {
			name = f
		}
		return inbox.FieldError("unknown field", map[string]string{name: "unknown field"})
	}
	return inbox.Wrap(inbox.Invalid, err, "malformed JSON")
}

func jsonType(goType string) string {
	switch {
	case goType == "string" || strings.HasSuffix(goType, "Role") || goType == "*string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint") || strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	case strings.Contains(goType, "time.Time"):
		return "an RFC 3339 timestamp"
	}
	return fmt.Sprintf("of type %s", goType)
}

func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// pageParams reads limit (1..max, default def) and cursor.
func pageParams(r *http.Request, def, max int) (int, string, error) {
	q := r.URL.Query()
	limit := def
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return 0, "", inbox.FieldError("invalid query", map[string]string{"limit": fmt.Sprintf("must be a number from 1 to %d", max)})
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if len(cursor) > 512 {
		return 0, "", inbox.FieldError("invalid query", map[string]string{"cursor": "too long"})
	}
	return limit, cursor, nil
}
