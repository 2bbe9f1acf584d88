package hub

import (
	"testing"

	"github.com/oshirase/oshirase/wire"
)

// Removing a subscription that is not in the list (Hub.Close ended it
// while Subscribe was still adding it to its channels) changes nothing:
// its unset place must not take out the subscription that is there.
func TestRemoveWhatIsNotThere(t *testing.T) {
	ch := wire.Channel("c")
	var ms members
	a := &Subscription{channels: []wire.Channel{ch}, at: make([]int, 1)}
	b := &Subscription{channels: []wire.Channel{"x", ch}, at: make([]int, 2)}
	ms.add(a, 0)
	if ms.remove(b, 1) {
		t.Fatal("removing an absent subscription emptied the list")
	}
	if len(ms.list) != 1 || ms.list[0] != a || ms.holes != 0 {
		t.Fatalf("list %v, holes %d: want only a", ms.list, ms.holes)
	}
	ms.add(b, 1)
	if ms.remove(a, 0) || ms.list[b.at[1]] != b {
		t.Fatalf("after removing a: list %v, b at %d", ms.list, b.at[1])
	}
	if ms.remove(a, 0) {
		t.Fatal("removing a twice emptied the list")
	}
	if !ms.remove(b, 1) {
		t.Fatal("removing the last one did not report the list empty")
	}
}
