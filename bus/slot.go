package bus

import "strings"

// slotCount is how many hash slots a Redis Cluster has.
const slotCount = 16384

// slotOf is the cluster hash slot of a key or shard channel, as Redis
// computes it: CRC16 (XMODEM) of the hash tag (the part between the first
// "{" and the next "}", when not empty) or of the whole name, mod 16384.
// Every wire.Channel has a hash tag that its count, history and meta keys
// share, so they all live in one slot.
func slotOf(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slotCount
}
