module github.com/oshirase/oshirase/bus

go 1.26.0

replace (
	github.com/oshirase/oshirase/service => ../service
	github.com/oshirase/oshirase/wire => ../wire
)

require (
	github.com/google/uuid v1.6.0
	github.com/oshirase/oshirase/service v0.0.0-00010101000000-000000000000
	github.com/oshirase/oshirase/wire v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
