package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Summary describes a set of durations.
type Summary struct {
	N             int
	P50, P99, Max time.Duration
	Mean          time.Duration
}

// Summarize sorts a copy of ds and returns its percentiles (nearest rank).
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	return Summary{N: len(s), P50: Percentile(s, 50), P99: Percentile(s, 99), Max: s[len(s)-1],
		Mean: time.Duration(sum / float64(len(s)))}
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value such that at least p% of the
// values are less than or equal to it. It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// String formats the summary as "p50 … p99 … max …".
func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s   p99 %s   max %s", ms(s.P50), ms(s.P99), ms(s.Max))
}

// ms formats d in milliseconds with a precision that fits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// rates is a flag.Value holding a comma-separated list of positive rates.
type rates []int

func (r *rates) String() string {
	if r == nil {
		return ""
	}
	parts := make([]string, len(*r))
	for i, v := range *r {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func (r *rates) Set(s string) error {
	var out []int
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 || v > 100000 {
			return fmt.Errorf("rate %q: want a whole number of webhooks per second in 1..100000", p)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return fmt.Errorf("no rate in %q", s)
	}
	*r = out
	return nil
}
