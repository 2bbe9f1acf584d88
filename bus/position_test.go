package bus_test

import (
	"math"
	"testing"

	"github.com/oshirase/oshirase/bus"
)

func TestStreamID(t *testing.T) {
	for _, s := range []string{"0-0", "1-0", "1700000000000-3", "18446744073709551615-18446744073709551615"} {
		id, err := bus.ParseStreamID(s)
		if err != nil || id.String() != s {
			t.Fatalf("ParseStreamID(%q) = %v, %v", s, id, err)
		}
	}
	for _, bad := range []string{"", "1", "-1", "1-", "a-1", "1-1-1", "1--1", "18446744073709551616-0", " 1-0"} {
		if _, err := bus.ParseStreamID(bad); err == nil {
			t.Errorf("ParseStreamID(%q) accepted", bad)
		}
	}
	a, b := bus.StreamID{MS: 5, Seq: 0}, bus.StreamID{MS: 5, Seq: 1}
	if a.Compare(b) != -1 || b.Compare(a) != 1 || a.Compare(a) != 0 || (bus.StreamID{MS: 4, Seq: 9}).Compare(a) != -1 {
		t.Fatal("Compare")
	}
	if b.Prev() != a || a.Next() != b {
		t.Fatal("Prev/Next within a millisecond")
	}
	if got := a.Prev(); got != (bus.StreamID{MS: 4, Seq: math.MaxUint64}) || got.Next() != a {
		t.Fatalf("Prev across a millisecond = %v", got)
	}
	if !(bus.StreamID{}).Prev().IsZero() {
		t.Fatal("0-0 has no predecessor")
	}
	top := bus.StreamID{MS: math.MaxUint64, Seq: math.MaxUint64}
	if top.Next() != top {
		t.Fatal("the largest id has no successor")
	}
}
