package logging_test

import (
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/logging"
)

func TestThrottle(t *testing.T) {
	th := &logging.Throttle{Interval: time.Hour}
	if ok, n := th.Allow(); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for range 5 {
		if ok, _ := th.Allow(); ok {
			t.Fatal("let through within the interval")
		}
	}
	th2 := &logging.Throttle{Interval: time.Nanosecond}
	th2.Allow()
	time.Sleep(time.Millisecond)
	if ok, _ := th2.Allow(); !ok {
		t.Fatal("held back after the interval")
	}
}
