package scenario_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/oshirase/oshirase/loadtest/scenario"
)

func TestParsePhases(t *testing.T) {
	got, err := scenario.ParsePhases("idle, fixed:1000:5s,sweep:5000+10000:3s:30s,broadcast:3,publish:2s,idle:500ms")
	if err != nil {
		t.Fatal(err)
	}
	want := []scenario.Phase{
		{Kind: "idle", Settle: 2 * time.Second},
		{Kind: "fixed", Rates: []float64{1000}, Dur: 5 * time.Second},
		{Kind: "sweep", Rates: []float64{5000, 10000}, Dur: 3 * time.Second, Hold: 30 * time.Second},
		{Kind: "broadcast", Count: 3},
		{Kind: "publish", Dur: 2 * time.Second},
		{Kind: "idle", Settle: 500 * time.Millisecond},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
}

func TestParsePhasesRejects(t *testing.T) {
	for _, s := range []string{"", "nap", "fixed:1000", "fixed:0:1s", "fixed:1+2:1s", "sweep:x:1s", "broadcast:-1", "publish", "publish:0s", "idle:soon"} {
		if _, err := scenario.ParsePhases(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseStorm(t *testing.T) {
	ps, err := scenario.ParsePhases("idle,storm:50")
	if err != nil || len(ps) != 2 || ps[1].Kind != "storm" || ps[1].Count != 50 {
		t.Fatalf("%+v %v", ps, err)
	}
	for _, bad := range []string{"storm", "storm:0", "storm:x"} {
		if _, err := scenario.ParsePhases(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
