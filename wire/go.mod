module github.com/oshirase/oshirase/wire

go 1.26.8
