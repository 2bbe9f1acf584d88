module github.com/oshirase/oshirase/pub

go 1.26

require github.com/oshirase/oshirase/wire v0.0.0

replace github.com/oshirase/oshirase/wire => ../wire
