package httpapi

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"github.com/parleyhq/parley/internal/inbox"
)

// NormalizeEmail returns the lower-cased bare address, or false when s is not one.
func NormalizeEmail(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || !strings.Contains(a.Address[strings.LastIndexByte(a.Address, '@'):], ".") {
		return "", false
	}
	return strings.ToLower(a.Address), true
}

// NormalizePhone returns s in E.164, or false when it is not a valid
// international number (a leading + and country code are required).
func NormalizePhone(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 32 {
		return "", false
	}
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	if !strings.HasPrefix(s, "+") {
		return "", false
	}
	n, err := phonenumbers.Parse(s, "ZZ")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

// text checks a trimmed string's rune length.
func checkLen(v *inbox.Validator, field, s string, min, max int) {
	n := utf8.RuneCountInString(s)
	switch {
	case min > 0 && strings.TrimSpace(s) == "":
		v.Check(false, field, "is required")
	case n < min:
		v.Check(false, field, "is too short")
	case n > max:
		v.Check(false, field, "is too long")
	}
	v.Check(utf8.ValidString(s), field, "is not valid UTF-8")
}

var colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

func validPriority(p string) bool {
	switch p {
	case "none", "low", "medium", "high", "urgent":
		return true
	}
	return false
}

func validAvailability(a string) bool { return a == "online" || a == "away" || a == "busy" }
