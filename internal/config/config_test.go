package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Parse("serve", nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Addr: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", DataDir: "./data",
		DatabaseURL: "sqlite:data/parley.db", LogLevel: "info", LogFormat: "text",
		MaxBodyBytes: 1 << 20, MaxUploadBytes: 50 << 20, ShutdownTimeout: 15 * time.Second, InboundRetention: 168 * time.Hour}
	if c != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestEnvAndFlagsWin(t *testing.T) {
	e := env(map[string]string{"PARLEY_ADDR": "0.0.0.0:9000", "PARLEY_DATA_DIR": "/var/parley", "PARLEY_LOG_FORMAT": "json",
		"PARLEY_MAX_BODY_BYTES": "2048", "PARLEY_PUBLIC_URL": "https://inbox.example.com/"})
	c, err := Parse("serve", []string{"-addr", "127.0.0.1:0", "-log-level", "debug"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:0" || c.DataDir != "/var/parley" || c.DatabaseURL != "sqlite:/var/parley/parley.db" ||
		c.LogFormat != "json" || c.LogLevel != "debug" || c.MaxBodyBytes != 2048 || c.PublicURL != "https://inbox.example.com" || !c.SecureCookies() {
		t.Fatalf("got %+v", c)
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct{ env, flag string }{
		{"PARLEY_LOG_LEVEL=loud", ""}, {"PARLEY_LOG_FORMAT=xml", ""}, {"PARLEY_MAX_BODY_BYTES=-1", ""},
		{"PARLEY_MAX_UPLOAD_BYTES=lots", ""}, {"PARLEY_PUBLIC_URL=ftp://x", ""}, {"PARLEY_SHUTDOWN_TIMEOUT=soon", ""}, {"", "-nope"},
	} {
		m := map[string]string{}
		if k, v, ok := strings.Cut(tc.env, "="); ok {
			m[k] = v
		}
		var args []string
		if tc.flag != "" {
			args = []string{tc.flag}
		}
		if _, err := Parse("serve", args, env(m), &bytes.Buffer{}); err == nil {
			t.Errorf("%v %v: no error", tc.env, tc.flag)
		}
	}
}

func TestHelpDocumentsEveryVar(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse("serve", []string{"-h"}, env(nil), &out)
	if err == nil {
		t.Fatal("-h should return flag.ErrHelp")
	}
	for _, v := range Vars() {
		if !strings.Contains(out.String(), v.Env) || !strings.Contains(out.String(), "-"+v.Flag) {
			t.Errorf("help lacks %s / -%s", v.Env, v.Flag)
		}
	}
}

func TestKeyGeneratedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	c := Config{DataDir: filepath.Join(dir, "data")}
	k1, err := c.Key()
	if err != nil || len(k1) != 32 {
		t.Fatalf("Key = %d bytes, %v", len(k1), err)
	}
	st, err := os.Stat(filepath.Join(dir, "data", "secret.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret.key mode %v, %v", st.Mode(), err)
	}
	k2, err := c.Key()
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatal("second run generated a different key")
	}
}

func TestKeyFromEnv(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	c := Config{SecretKey: hexKey, DataDir: t.TempDir()}
	k, err := c.Key()
	if err != nil || k[0] != 0xab {
		t.Fatalf("hex key: %v", err)
	}
	for _, bad := range []string{"short", strings.Repeat("zz", 32), "YWJj"} {
		if _, err := (Config{SecretKey: bad}).Key(); err == nil {
			t.Errorf("accepted key %q", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "secret.key")); err == nil {
		t.Fatal("wrote a key file although PARLEY_SECRET_KEY was set")
	}
}

func TestREADMEDocumentsEveryVar(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skip("README.md not found")
	}
	for _, v := range Vars() {
		if !strings.Contains(string(b), "`"+v.Env+"`") {
			t.Errorf("README.md's configuration table lacks %s", v.Env)
		}
	}
}
