package auth

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var fast = Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("not a PHC argon2id string: %s", h)
	}
	if err := VerifyPassword("correct horse", h); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := VerifyPassword("correct horsE", h); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	h2, _ := HashPassword("correct horse", fast)
	if h == h2 {
		t.Fatal("same hash twice: salt not random")
	}
	d, err := HashPassword("x", DefaultParams)
	if err != nil || VerifyPassword("x", d) != nil {
		t.Fatalf("default params: %v", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, _ := HashPassword("pw", fast)
	parts := strings.Split(good, "$")
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=1024,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=18$" + parts[3] + "$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=99999999,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=1024,t=0,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$" + parts[3] + "$!!$" + parts[5],
		"$argon2id$v=19$" + parts[3] + "$" + parts[4] + "$",
	} {
		if err := VerifyPassword("pw", bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("VerifyPassword(%q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzVerifyPassword(f *testing.F) {
	good, _ := HashPassword("pw", fast)
	f.Add("pw", good)
	f.Add("", "$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, pw, enc string) {
		_ = VerifyPassword(pw, enc) // must not panic or allocate absurdly
	})
}

func TestTokens(t *testing.T) {
	a, b := NewToken("prl_"), NewToken("prl_")
	if a == b || !strings.HasPrefix(a, "prl_") || len(a) != 4+43 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if HashToken(a) == HashToken(b) || len(HashToken(a)) != 64 || HashToken("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatal("HashToken not a stable SHA-256 hex")
	}
	if !Equal(a, a) || Equal(a, b) {
		t.Fatal("Equal")
	}
}

func TestLimiterSlidingWindow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	l := NewLimiter(3, 10*time.Minute, clock)

	for i := 0; i < 3; i++ {
		if _, blocked := l.Blocked("a@x"); blocked {
			t.Fatalf("blocked after %d failures", i)
		}
		l.Fail("a@x", "ip:1")
		advance(time.Minute)
	}
	wait, blocked := l.Blocked("a@x")
	if !blocked || wait != 7*time.Minute {
		t.Fatalf("Blocked = %v, %v; want 7m, true", wait, blocked)
	}
	if _, blocked := l.Blocked("b@x"); blocked {
		t.Fatal("other key blocked")
	}
	if _, blocked := l.Blocked("b@x", "ip:1"); !blocked {
		t.Fatal("shared IP key should block")
	}
	advance(7 * time.Minute) // the first failure leaves the window
	if _, blocked := l.Blocked("a@x"); blocked {
		t.Fatal("still blocked after the window slid")
	}
	l.Fail("a@x")
	if _, blocked := l.Blocked("a@x"); !blocked {
		t.Fatal("two old + one new failure should block again")
	}
	l.Reset("a@x")
	if _, blocked := l.Blocked("a@x"); blocked {
		t.Fatal("Reset did not clear")
	}
}
