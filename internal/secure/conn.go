package secure

import (
	"bufio"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
)

// MaxRecordPlain is the most plaintext one record carries: a Noise
// message's 65535 bytes less the tag.
const MaxRecordPlain = MaxMessage - TagLen

// ErrRecord means a record failed authentication or is malformed: the bytes
// on the connection were not written by the peer's Conn with these keys.
// The connection must be closed; every later Read returns it again.
var ErrRecord = errors.New("secure: record failed authentication")

// writeBatch is how many bytes of records a Write gathers before handing
// them to the connection in one call.
const writeBatch = 256 << 10

// direction is one direction's AEAD and nonce.
type direction struct {
	aead cipher.AEAD
	key  [KeyLen]byte
	n    uint64
	nb   [12]byte
}

func newDirection(k Keys) direction {
	return direction{aead: newAEAD(k.Key[:]), key: k.Key, n: k.Nonce}
}

// next returns the nonce of the next record and counts it; Noise forbids
// the nonce 2^64-1.
func (d *direction) next() ([]byte, error) {
	if d.n == math.MaxUint64 {
		return nil, errors.New("secure: nonces exhausted")
	}
	nb := nonce(&d.nb, d.n)
	d.n++
	return nb, nil
}

// Conn is a net.Conn whose every byte crosses in records sealed with
// AES-256-GCM under one key per direction (spec.md, "Records of the
// channel"):
//
//	| length u16 | ciphertext and tag (length bytes) |
//
// Writes are split into records of up to MaxRecordPlain bytes and end at a
// record boundary. Reads take exactly one record at a time from the
// connection and never read past it, unless ReadAhead was called, so the
// connection can be handed to another process between records (State).
// Each direction reuses its buffers: the steady state allocates nothing.
// Reads and writes may run concurrently; concurrent reads (or writes) are
// serialised. Deadlines and Close are the underlying connection's.
type Conn struct {
	net.Conn

	rmu   sync.Mutex
	recv  direction
	src   io.Reader // the connection, or a buffer on it after ReadAhead
	rbuf  []byte    // one record
	plain []byte    // opened, not yet read: a slice of rbuf
	rerr  error

	wmu  sync.Mutex
	send direction
	wbuf []byte
	werr error
}

// NewConn returns a Conn on c that seals what it writes with send and
// opens what it reads with recv.
func NewConn(c net.Conn, send, recv Keys) *Conn {
	return &Conn{Conn: c, send: newDirection(send), recv: newDirection(recv), src: c}
}

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// ReadAhead lets Read take more than one record from the connection at a
// time, saving system calls. Call it only once the connection will not
// change hands.
func (c *Conn) ReadAhead() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if _, ok := c.src.(*bufio.Reader); !ok {
		c.src = bufio.NewReaderSize(c.Conn, 2*(MaxMessage+2))
	}
}

// Read returns plaintext from the next record(s).
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) == 0 {
			return 0, nil
		}
		if err := c.readRecord(); err != nil {
			if !errors.Is(err, ErrRecord) && !isTimeout(err) {
				c.rerr = err
			}
			return 0, err
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readRecord reads and opens one record into c.plain. A record cut by a
// deadline is lost with the stream's sync, so only a timeout before its
// first byte may be retried.
func (c *Conn) readRecord() error {
	if c.rbuf == nil {
		c.rbuf = make([]byte, MaxMessage)
	}
	var hdr [2]byte
	if n, err := io.ReadFull(c.src, hdr[:]); err != nil {
		if n > 0 {
			c.rerr = fmt.Errorf("%w: cut inside its header", io.ErrUnexpectedEOF)
			return c.rerr
		}
		return err
	}
	size := int(binary.BigEndian.Uint16(hdr[:]))
	if size < TagLen {
		c.rerr = fmt.Errorf("%w: a record of %d bytes", ErrRecord, size)
		return c.rerr
	}
	if _, err := io.ReadFull(c.src, c.rbuf[:size]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		c.rerr = fmt.Errorf("reading a record: %w", err)
		return c.rerr
	}
	nb, err := c.recv.next()
	if err != nil {
		c.rerr = err
		return err
	}
	p, err := c.recv.aead.Open(c.rbuf[:0], nb, c.rbuf[:size], nil)
	if err != nil {
		c.rerr = ErrRecord
		return c.rerr
	}
	c.plain = p
	return nil
}

// Write seals p into records and writes them, gathering up to 256 KiB of
// records per write to the connection.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.wbuf == nil {
		c.wbuf = make([]byte, 0, writeBatch+MaxMessage+2)
	}
	done := 0
	for done < len(p) {
		buf := c.wbuf[:0]
		start := done
		for done < len(p) && len(buf) < writeBatch {
			n := min(len(p)-done, MaxRecordPlain)
			nb, err := c.send.next()
			if err != nil {
				c.werr = err
				return start, err
			}
			buf = binary.BigEndian.AppendUint16(buf, uint16(n+TagLen))
			buf = c.send.aead.Seal(buf, nb, p[done:done+n], nil)
			done += n
		}
		if _, err := c.Conn.Write(buf); err != nil {
			// Records were counted but may not have gone out: the
			// stream is out of step with the peer for good.
			c.werr = err
			return start, err
		}
	}
	return done, nil
}

// State returns the transport state (keys and next nonces) to hand the
// connection to another process, which goes on with NewConn. It fails if a
// record was read but not wholly consumed. After State, this Conn must not
// be used to read or write: the same nonce must never seal two records.
func (c *Conn) State() (send, recv Keys, err error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.plain) > 0 {
		return send, recv, fmt.Errorf("secure: %d bytes read from the channel are not consumed", len(c.plain))
	}
	if _, ok := c.src.(*bufio.Reader); ok {
		return send, recv, errors.New("secure: the connection was read ahead")
	}
	return Keys{c.send.key, c.send.n}, Keys{c.recv.key, c.recv.n}, nil
}

// StateLen is the size of an encoded transport state.
const StateLen = 2 * (KeyLen + 8)

// AppendState appends the encoding of a transport state to b: the send
// key, its nonce (big-endian u64), the receive key, its nonce.
func AppendState(b []byte, send, recv Keys) []byte {
	b = append(b, send.Key[:]...)
	b = binary.BigEndian.AppendUint64(b, send.Nonce)
	b = append(b, recv.Key[:]...)
	return binary.BigEndian.AppendUint64(b, recv.Nonce)
}

// ParseState decodes what AppendState wrote.
func ParseState(b []byte) (send, recv Keys, err error) {
	if len(b) != StateLen {
		return send, recv, fmt.Errorf("secure: a transport state is %d bytes, got %d", StateLen, len(b))
	}
	copy(send.Key[:], b)
	send.Nonce = binary.BigEndian.Uint64(b[KeyLen:])
	copy(recv.Key[:], b[KeyLen+8:])
	recv.Nonce = binary.BigEndian.Uint64(b[2*KeyLen+8:])
	return send, recv, nil
}
