package cluster

import (
	"encoding/binary"
	"net"
)

// frameConn is the connection under a yamux session. yamux writes each data
// frame as two writes, its 12-byte header and then its body; frameConn holds
// the header back and sends both in one write, halving the system calls per
// message. Only yamux's send loop writes to it, one frame at a time.
type frameConn struct {
	net.Conn
	hdr     [12]byte
	pending bool
	buf     []byte
}

// yamux header: version(1) type(1) flags(2) stream(4) length(4); type 0 is
// data, whose length counts the body bytes that follow.
func isDataHeader(b []byte) bool {
	return len(b) == 12 && b[0] == 0 && b[1] == 0 && binary.BigEndian.Uint32(b[8:]) > 0
}

func (c *frameConn) Write(b []byte) (int, error) {
	if c.pending {
		c.pending = false
		c.buf = append(append(c.buf[:0], c.hdr[:]...), b...)
		_, err := c.Conn.Write(c.buf)
		if cap(c.buf) > 1<<20 {
			c.buf = nil
		}
		if err != nil {
			return 0, err
		}
		return len(b), nil
	}
	if isDataHeader(b) {
		copy(c.hdr[:], b)
		c.pending = true
		return len(b), nil
	}
	return c.Conn.Write(b)
}
