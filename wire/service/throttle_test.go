package service_test

import (
	"testing"
	"time"

	"github.com/oshirase/oshirase/wire/service"
)

func TestThrottle(t *testing.T) {
	th := &service.Throttle{Interval: time.Hour}
	if ok, n := th.Allow(); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for range 5 {
		if ok, _ := th.Allow(); ok {
			t.Fatal("let through within the interval")
		}
	}
	th2 := &service.Throttle{Interval: time.Nanosecond}
	th2.Allow()
	time.Sleep(time.Millisecond)
	if ok, _ := th2.Allow(); !ok {
		t.Fatal("held back after the interval")
	}
}
