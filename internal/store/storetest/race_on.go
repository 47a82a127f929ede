//go:build race

package storetest

// raceEnabled shrinks the concurrent test under the race detector, which
// slows the pure-Go SQLite driver down by more than an order of magnitude.
const raceEnabled = true
