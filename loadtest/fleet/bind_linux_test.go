package fleet

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// A connection dialled from a chosen source address carries
// IP_BIND_ADDRESS_NO_PORT, so its port is picked at connect time.
func TestBindNoPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Control: bindNoPort}
	c, err := nd.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if v != 1 {
		t.Fatalf("IP_BIND_ADDRESS_NO_PORT = %d, want 1", v)
	}
	if got := c.LocalAddr().(*net.TCPAddr); !got.IP.Equal(net.IPv4(127, 0, 0, 2)) || got.Port == 0 {
		t.Fatalf("local address %v", got)
	}
}
