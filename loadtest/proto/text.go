package proto

import (
	"strconv"
	"time"
)

// A notice text the load tool publishes carries its own send time, so every
// delivery yields an end-to-end latency without clock exchange (publisher
// and receivers share the machine's clock):
//
//	lt:<send time, Unix ns>:<sequence>   a measured notice
//	pr:<send time, Unix ns>:<sequence>   a readiness probe
const (
	measuredTag = "lt:"
	probeTag    = "pr:"
)

// Text returns the text of measured notice seq sent at t.
func Text(t time.Time, seq int64) string {
	return measuredTag + strconv.FormatInt(t.UnixNano(), 10) + ":" + strconv.FormatInt(seq, 10)
}

// ProbeText returns the text of readiness probe seq sent at t.
func ProbeText(t time.Time, seq int64) string {
	return probeTag + strconv.FormatInt(t.UnixNano(), 10) + ":" + strconv.FormatInt(seq, 10)
}

// ReadText splits a text made by Text or ProbeText.
func ReadText(b []byte) (sentNano int64, probe, ok bool) {
	if len(b) < 4 || b[2] != ':' {
		return 0, false, false
	}
	switch string(b[:3]) {
	case measuredTag:
	case probeTag:
		probe = true
	default:
		return 0, false, false
	}
	var n int64
	i := 3
	for ; i < len(b) && b[i] != ':'; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false, false
		}
		n = n*10 + int64(c-'0')
	}
	if i == 3 {
		return 0, false, false
	}
	return n, probe, true
}
