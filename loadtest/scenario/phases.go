package scenario

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Phase is one step of a run, parsed from the -phases flag:
//
//	idle[:SETTLE]                 S1: connect all, wait live, settle, measure RSS (default 2s)
//	fixed:RATE:DUR                S3: personal notices at RATE/s for DUR
//	sweep:R1+R2+…:STEP[:HOLD]     S2: rising rates for STEP each while sustainable, then hold the best
//	broadcast:COUNT               S4: COUNT single notices to user 0
//	company:COUNT                 S4: COUNT company-wide notices, to every subscription of every user
//	publish:DUR                   S5: publish as fast as possible for DUR
//	storm:BEHIND                  S6: all disconnect, BEHIND notices per user, all reconnect after their cursors
type Phase struct {
	Kind   string
	Rates  []float64
	Dur    time.Duration
	Hold   time.Duration
	Count  int
	Settle time.Duration
}

// ParsePhases parses a comma-separated list of phases.
func ParsePhases(s string) ([]Phase, error) {
	var out []Phase
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		f := strings.Split(item, ":")
		p := Phase{Kind: f[0]}
		var err error
		bad := func(why string) error { return fmt.Errorf("scenario: phase %q: %s", item, why) }
		switch f[0] {
		case "idle":
			p.Settle = 2 * time.Second
			if len(f) > 1 {
				if p.Settle, err = time.ParseDuration(f[1]); err != nil {
					return nil, bad(err.Error())
				}
			}
		case "fixed", "sweep":
			if len(f) < 3 {
				return nil, bad("want " + f[0] + ":RATE:DUR")
			}
			for _, r := range strings.Split(f[1], "+") {
				v, err := strconv.ParseFloat(r, 64)
				if err != nil || v <= 0 {
					return nil, bad("bad rate " + r)
				}
				p.Rates = append(p.Rates, v)
			}
			if p.Dur, err = time.ParseDuration(f[2]); err != nil || p.Dur <= 0 {
				return nil, bad("bad duration")
			}
			if len(f) > 3 && f[0] == "sweep" {
				if p.Hold, err = time.ParseDuration(f[3]); err != nil {
					return nil, bad(err.Error())
				}
			}
			if f[0] == "fixed" && len(p.Rates) != 1 {
				return nil, bad("fixed takes one rate")
			}
		case "storm":
			if len(f) < 2 {
				return nil, bad("want storm:BEHIND")
			}
			if p.Count, err = strconv.Atoi(f[1]); err != nil || p.Count <= 0 {
				return nil, bad("bad count")
			}
		case "broadcast", "company":
			p.Count = 1
			if len(f) > 1 {
				if p.Count, err = strconv.Atoi(f[1]); err != nil || p.Count <= 0 {
					return nil, bad("bad count")
				}
			}
		case "publish":
			if len(f) < 2 {
				return nil, bad("want publish:DUR")
			}
			if p.Dur, err = time.ParseDuration(f[1]); err != nil || p.Dur <= 0 {
				return nil, bad("bad duration")
			}
		default:
			return nil, bad("unknown phase")
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("scenario: no phases")
	}
	return out, nil
}
