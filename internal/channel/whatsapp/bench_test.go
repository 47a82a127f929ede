package whatsapp

import (
	"os"
	"testing"
)

func BenchmarkParseBatch(b *testing.B) {
	body, err := os.ReadFile("testdata/batch.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body, pnid); err != nil {
			b.Fatal(err)
		}
	}
}
