package admit

import (
	"net"
	"testing"
)

// from is a connection from an address; only RemoteAddr is used.
type from struct {
	net.Conn
	addr *net.TCPAddr
}

func (c *from) RemoteAddr() net.Addr { return c.addr }

func conn(ip string) net.Conn {
	return &from{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

func TestPerSource(t *testing.T) {
	g := NewGate(100, 2)
	a1, a2, a3 := conn("10.0.0.1"), conn("10.0.0.1"), conn("10.0.0.1")
	b := conn("10.0.0.2")
	for _, c := range []net.Conn{a1, a2, b} {
		if ok, shed := g.Admit(c); !ok || shed != nil {
			t.Fatalf("Admit(%v) = %v, %v; want admitted, nothing shed", c.RemoteAddr(), ok, shed)
		}
	}
	if ok, _ := g.Admit(a3); ok {
		t.Fatal("a third connection from 10.0.0.1 admitted over the per-source limit of 2")
	}
	g.Done(a1)
	g.Done(a1) // twice does nothing more
	if ok, _ := g.Admit(a3); !ok {
		t.Fatal("a connection from 10.0.0.1 refused after another's handshake ended")
	}
	if got := g.Waiting(); got != 3 {
		t.Fatalf("Waiting() = %d, want 3", got)
	}
}

func TestTotalShedsOldest(t *testing.T) {
	g := NewGate(3, 3)
	cs := []net.Conn{conn("10.0.0.1"), conn("10.0.0.2"), conn("10.0.0.3")}
	for _, c := range cs {
		g.Admit(c)
	}
	g.Done(cs[0]) // passed its handshake: not a candidate for shedding
	g.Admit(conn("10.0.0.4"))
	next := conn("10.0.0.5")
	ok, shed := g.Admit(next)
	if !ok || shed != cs[1] {
		t.Fatalf("over the total: Admit = %v, shed %v; want admitted, shedding the oldest waiting (10.0.0.2)", ok, shed)
	}
	if got := g.Waiting(); got != 3 {
		t.Fatalf("Waiting() = %d, want the total, 3", got)
	}
	// The shed connection's source may connect again.
	if ok, _ := g.Admit(conn("10.0.0.2")); !ok {
		t.Fatal("10.0.0.2 refused after its connection was shed")
	}
}

func TestLimits(t *testing.T) {
	total, per := Limits()
	if total < 16 || total > 1024 || per < 1 || per > 64 || per > total {
		t.Fatalf("Limits() = %d, %d", total, per)
	}
}
