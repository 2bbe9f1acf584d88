module github.com/oshirase/oshirase/loadtest

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/oshirase/oshirase/bus v0.0.0
	github.com/oshirase/oshirase/wire v0.0.0
	github.com/redis/go-redis/v9 v9.23.0
	golang.org/x/sys v0.49.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/oshirase/oshirase/service v0.0.0-00010101000000-000000000000 // indirect
	go.uber.org/atomic v1.12.0 // indirect
)

replace (
	github.com/oshirase/oshirase/bus => ../bus
	github.com/oshirase/oshirase/service => ../service
	github.com/oshirase/oshirase/wire => ../wire
)
