package providersim

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestSmokeAgainstParley runs the whole simulation against a running Parley
// named by PARLEY_SIM_TARGET (with PARLEY_SIM_EMAIL/PARLEY_SIM_PASSWORD and
// PARLEY_SIM_WORKSPACE); it is skipped otherwise.
func TestSmokeAgainstParley(t *testing.T) {
	target := os.Getenv("PARLEY_SIM_TARGET")
	if target == "" {
		t.Skip("set PARLEY_SIM_TARGET (and PARLEY_SIM_EMAIL, PARLEY_SIM_PASSWORD, PARLEY_SIM_WORKSPACE) to run against a live Parley")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	err := Main(ctx, []string{"--target", target, "--workspace", os.Getenv("PARLEY_SIM_WORKSPACE"),
		"--email", os.Getenv("PARLEY_SIM_EMAIL"), "--password", os.Getenv("PARLEY_SIM_PASSWORD"),
		"--count", "120", "--rate", "40", "--seed", "3", "--json"}, &out, &errb)
	t.Log(errb.String())
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
}
