package bus

// SetCountScript lets tests leave a count behind the way a crashed sub
// instance does.
var SetCountScript = setCountScript

// SlotOf is the cluster hash slot of a key or shard channel.
var SlotOf = slotOf

// PublishHash is the SHA of the publish script b runs.
func PublishHash(b *Redis) string { return b.publish.Hash() }

// Splice puts a position into an encoded message as a history read does.
var Splice = splice

// NewEpoch names a history as publishing does.
var NewEpoch = newEpoch

// RequestResync has b rewrite every count, as its periodic refresh does.
func RequestResync(b *Redis) { b.requestResync() }

// RefreshPending is how many counts the rewrite under way has still to
// write.
func RefreshPending(b *Redis) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.refresh)
}

// MoveProbe moves every shard's delivery probe to channel ch, as a slot
// move does on a cluster: the probe waits for Redis to confirm its
// subscription to ch.
func MoveProbe(b *Redis, ch string) {
	for _, s := range b.shardList() {
		s.setProbeChannel(ch)
	}
}

// ProbeNow runs one delivery probe of every shard, as the prober does
// every ProbeInterval.
func ProbeNow(b *Redis) {
	for _, s := range b.shardList() {
		s.probe("now")
	}
}
