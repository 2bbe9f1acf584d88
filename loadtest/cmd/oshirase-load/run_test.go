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

func TestParseRedisCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.0\r\n"
	if got, err := parseRedisCPU(info); err != nil || got != 3.75 {
		t.Fatalf("got %v, %v; want 3.75", got, err)
	}
	if _, err := parseRedisCPU("# CPU\r\nused_cpu_sys:1\r\n"); err == nil {
		t.Fatal("a missing used_cpu_user was accepted")
	}
}
