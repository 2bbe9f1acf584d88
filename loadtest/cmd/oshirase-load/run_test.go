package main

import "testing"

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"ws://127.0.0.1:8081/graphql", "http://localhost:8080/query", "127.0.0.1:6379", "redis://127.0.0.9:6379/0", "http://[::1]:80/"} {
		if err := loopbackOnly(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"ws://10.0.0.1:8081/graphql", "http://example.com/query", "192.168.1.1:6379", "redis://8.8.8.8:6379"} {
		if err := loopbackOnly(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
