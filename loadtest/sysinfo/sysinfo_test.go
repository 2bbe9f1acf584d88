package sysinfo

import (
	"net"
	"os"
	"testing"
)

func TestParseStatus(t *testing.T) {
	st := []byte("Name:\tsub\nVmRSS:\t  123456 kB\nThreads:\t7\n")
	if v, err := parseStatusKB(st, "VmRSS:"); err != nil || v != 123456*1024 {
		t.Fatalf("VmRSS %d %v", v, err)
	}
	if _, err := parseStatusKB(st, "VmSwap:"); err == nil {
		t.Fatal("missing field accepted")
	}
}

func TestListenInodes(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
`)
	got := listenInodes(table, 8081)
	if len(got) != 1 || got[0] != "4242" {
		t.Fatalf("got %v", got)
	}
}

func TestSelf(t *testing.T) {
	if _, err := RaiseNoFile(); err != nil {
		t.Fatal(err)
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("rss %d %v", rss, err)
	}
	if _, err := CPUTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid, err := PIDByPort(ln.Addr().(*net.TCPAddr).Port)
	if err != nil || pid != os.Getpid() {
		t.Fatalf("pid %d %v", pid, err)
	}
}
