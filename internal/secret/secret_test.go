package secret

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func newBox(t *testing.T) *Box {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	b, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpenRoundTrip(t *testing.T) {
	b := newBox(t)
	for _, pt := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte("secret"), 1000)} {
		s1, err := b.Seal(pt)
		if err != nil {
			t.Fatal(err)
		}
		s2, _ := b.Seal(pt)
		if bytes.Equal(s1, s2) {
			t.Fatal("two seals of the same plaintext are equal: nonce not random")
		}
		if len(pt) >= 6 && bytes.Contains(s1, pt[:6]) { // short plaintexts may occur by chance
			t.Fatal("plaintext visible in sealed output")
		}
		got, err := b.Open(s1)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v; want %q", got, err, pt)
		}
	}
}

func TestTamperDetection(t *testing.T) {
	b := newBox(t)
	sealed, err := b.Seal([]byte("access-token-value"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := b.Open(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("flipping byte %d: err = %v, want ErrInvalid", i, err)
		}
	}
	for _, bad := range [][]byte{nil, {1}, sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		if _, err := b.Open(bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Open(%d bytes) err = %v, want ErrInvalid", len(bad), err)
		}
	}
	if _, err := newBox(t).Open(sealed); !errors.Is(err, ErrInvalid) {
		t.Fatalf("other key: err = %v, want ErrInvalid", err)
	}
}

func TestMap(t *testing.T) {
	b := newBox(t)
	in := map[string]string{"access_token": "EAAG…", "app_secret": "s3cr3t"}
	sealed, err := b.SealMap(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.OpenMap(sealed)
	if err != nil || len(out) != 2 || out["access_token"] != in["access_token"] || out["app_secret"] != in["app_secret"] {
		t.Fatalf("OpenMap = %v, %v", out, err)
	}
	if s, _ := b.SealMap(nil); s != nil {
		t.Fatal("empty map should seal to nil")
	}
	if m, err := b.OpenMap(nil); err != nil || len(m) != 0 {
		t.Fatalf("OpenMap(nil) = %v, %v", m, err)
	}
}

func TestKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Fatalf("New accepted a %d-byte key", n)
		}
	}
}

func FuzzOpen(f *testing.F) {
	k := make([]byte, 32)
	b, _ := New(k)
	s, _ := b.Seal([]byte("hello"))
	f.Add(s)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := b.Open(data)
		if err == nil && !bytes.Equal(pt, []byte("hello")) {
			// a forgery that opens would be a GCM break; anything we sealed is "hello"
			t.Fatalf("forged ciphertext opened: %q", pt)
		}
	})
}
