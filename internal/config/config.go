// Package config loads Parley's configuration from flags and PARLEY_*
// environment variables (flags win), with defaults that just work.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is everything `parley serve` needs.
type Config struct {
	Addr            string
	PublicURL       string
	DataDir         string
	DatabaseURL     string
	NATSURL         string
	SecretKey       string // as given; use Key() for the 32 resolved bytes
	LogLevel        string
	LogFormat       string
	MaxBodyBytes    int64
	MaxUploadBytes  int64
	ShutdownTimeout time.Duration
	// InboundRetention is how long applied webhooks are kept for
	// reprocessing (0: for ever).
	InboundRetention time.Duration
}

// Var documents one setting: its environment variable, flag and default.
type Var struct {
	Env, Flag, Default, Help string
}

// Vars lists every setting (used for --help and the README table).
func Vars() []Var {
	return []Var{
		{"PARLEY_ADDR", "addr", "127.0.0.1:8080", "listen address (port 0 picks a free port)"},
		{"PARLEY_PUBLIC_URL", "public-url", "http://<addr>", "URL providers and browsers use to reach this server"},
		{"PARLEY_DATA_DIR", "data-dir", "./data", "directory for the SQLite database, the secret key and media"},
		{"PARLEY_DATABASE_URL", "database-url", "sqlite:<data-dir>/parley.db", "sqlite:<path> or postgres://…"},
		{"PARLEY_NATS_URL", "nats-url", "", "NATS URL for the cluster bus (unset: in-process bus)"},
		{"PARLEY_SECRET_KEY", "secret-key", "", "32-byte key (64 hex chars or base64) sealing channel secrets; unset: generated into <data-dir>/secret.key"},
		{"PARLEY_LOG_LEVEL", "log-level", "info", "debug|info|warn|error"},
		{"PARLEY_LOG_FORMAT", "log-format", "text", "text|json"},
		{"PARLEY_MAX_BODY_BYTES", "max-body-bytes", "1048576", "largest accepted JSON request body"},
		{"PARLEY_MAX_UPLOAD_BYTES", "max-upload-bytes", "52428800", "largest accepted upload"},
		{"PARLEY_SHUTDOWN_TIMEOUT", "shutdown-timeout", "15s", "how long a graceful shutdown waits for in-flight requests"},
		{"PARLEY_INBOUND_RETENTION", "inbound-retention", "168h", "how long applied webhooks are kept for `parley repair reprocess` (0: for ever)"},
	}
}

// Parse reads flags from args and defaults from getenv. Derived defaults
// (public URL, database URL) are filled in. It does no I/O besides writing
// usage to out on -h.
func Parse(name string, args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	finish := Bind(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: parley %s [flags]\n\nEvery flag can also be set by its environment variable; flags win.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return finish()
}

// Bind defines the configuration flags on fs (defaults from getenv) and
// returns the function that builds the Config after fs.Parse.
func Bind(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	vals := map[string]*string{}
	for _, v := range Vars() {
		def := getenv(v.Env)
		if def == "" && !strings.Contains(v.Default, "<") {
			def = v.Default
		}
		vals[v.Env] = fs.String(v.Flag, def, fmt.Sprintf("%s (env %s, default %q)", v.Help, v.Env, v.Default))
	}
	return func() (Config, error) { return build(vals) }
}

func build(vals map[string]*string) (Config, error) {
	c := Config{
		Addr:        *vals["PARLEY_ADDR"],
		PublicURL:   strings.TrimRight(*vals["PARLEY_PUBLIC_URL"], "/"),
		DataDir:     *vals["PARLEY_DATA_DIR"],
		DatabaseURL: *vals["PARLEY_DATABASE_URL"],
		NATSURL:     *vals["PARLEY_NATS_URL"],
		SecretKey:   *vals["PARLEY_SECRET_KEY"],
		LogLevel:    strings.ToLower(*vals["PARLEY_LOG_LEVEL"]),
		LogFormat:   strings.ToLower(*vals["PARLEY_LOG_FORMAT"]),
	}
	var err error
	if c.MaxBodyBytes, err = parseSize("PARLEY_MAX_BODY_BYTES", *vals["PARLEY_MAX_BODY_BYTES"]); err != nil {
		return Config{}, err
	}
	if c.MaxUploadBytes, err = parseSize("PARLEY_MAX_UPLOAD_BYTES", *vals["PARLEY_MAX_UPLOAD_BYTES"]); err != nil {
		return Config{}, err
	}
	if c.ShutdownTimeout, err = time.ParseDuration(*vals["PARLEY_SHUTDOWN_TIMEOUT"]); err != nil || c.ShutdownTimeout <= 0 {
		return Config{}, fmt.Errorf("PARLEY_SHUTDOWN_TIMEOUT: %q is not a positive duration", *vals["PARLEY_SHUTDOWN_TIMEOUT"])
	}
	if c.InboundRetention, err = time.ParseDuration(*vals["PARLEY_INBOUND_RETENTION"]); err != nil || c.InboundRetention < 0 {
		return Config{}, fmt.Errorf("PARLEY_INBOUND_RETENTION: %q is not a duration (0 keeps everything)", *vals["PARLEY_INBOUND_RETENTION"])
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "parley.db")
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + c.Addr
	}
	if _, err := c.Level(); err != nil {
		return Config{}, err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return Config{}, fmt.Errorf("PARLEY_LOG_FORMAT: %q is not text or json", c.LogFormat)
	}
	if !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		return Config{}, fmt.Errorf("PARLEY_PUBLIC_URL: %q must start with http:// or https://", c.PublicURL)
	}
	return c, nil
}

func parseSize(name, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive number of bytes", name, s)
	}
	return n, nil
}

// Level returns the slog level named by LogLevel.
func (c Config) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("PARLEY_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// SecureCookies reports whether cookies get the Secure flag (public URL is https).
func (c Config) SecureCookies() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// Key returns the 32-byte secret key: PARLEY_SECRET_KEY decoded, or the key in
// <data-dir>/secret.key, generated there (mode 0600) on first run.
func (c Config) Key() ([]byte, error) {
	if c.SecretKey != "" {
		k, err := DecodeKey(c.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("PARLEY_SECRET_KEY: %w", err)
		}
		return k, nil
	}
	path := filepath.Join(c.DataDir, "secret.key")
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := DecodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return c.Key()
		}
		return nil, err
	}
	if _, err := f.WriteString(base64.RawURLEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}

// DecodeKey accepts 64 hex characters or base64 (standard or URL, padded or
// not) of exactly 32 bytes.
func DecodeKey(s string) ([]byte, error) {
	if len(s) == 64 {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("the key must be 32 bytes as 64 hex characters or base64")
}
