package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"sync"

	"github.com/mpgo/mp/internal/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// DefaultMaxFrame is the largest frame a Codec accepts unless told
// otherwise: 64 MiB. A chunk of items and its results each travel in one
// frame, so this bounds a chunk's encoded size.
const DefaultMaxFrame = 64 << 20

// ErrFrameTooLarge is returned for a frame longer than the limit; the
// connection cannot be trusted after it.
var ErrFrameTooLarge = errors.New("mp: frame exceeds the size limit")

// A Kind is the type of a message, the first byte of a frame's payload.
type Kind byte

// Message kinds. See spec.md.
const (
	KindSetup      Kind = 1  // driver → poolworker: Setup
	KindSetupReply Kind = 2  // poolworker → driver: SetupReply
	KindBinary     Kind = 3  // driver → poolworker: raw executable bytes; empty ends
	KindReady      Kind = 4  // worker process → driver: Ready
	KindConfig     Kind = 5  // driver → worker process: Config
	KindRun        Kind = 6  // driver → worker: run a chunk
	KindCancel     Kind = 7  // driver → worker: Cancel
	KindResult     Kind = 8  // worker → driver: a chunk's results
	KindRetire     Kind = 9  // worker → driver: Retire; no new chunks please
	KindError      Kind = 10 // either way: ErrorMsg, then close
	KindResultPart Kind = 11 // worker → driver: results that precede a Result
	KindGet        Kind = 12 // worker → driver: Get, the value of a Ref
	KindObject     Kind = 13 // driver → worker: Object, a piece of it
	KindForget     Kind = 14 // driver → worker: Forget, a released value
	maxKind        Kind = KindForget
)

func (k Kind) String() string {
	names := [...]string{"invalid", "Setup", "SetupReply", "Binary", "Ready", "Config", "Run", "Cancel", "Result", "Retire", "Error", "ResultPart", "Get", "Object", "Forget"}
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("Kind(%d)", byte(k))
}

// A Codec reads and writes frames on one byte stream (a TCP connection
// before yamux starts, or one yamux stream): a 4-byte big-endian length,
// then that many bytes of payload, the first of which is the Kind. It keeps
// one msgpack encoder and one decoder for the stream's life.
//
// Send and its variants are safe for concurrent use; Recv must be called
// from one goroutine at a time.
type Codec struct {
	max int

	r    io.Reader
	rbuf []byte
	dec  *msgpack.Decoder
	br   guard  // what dec reads: the body of a frame
	last []byte // the body Recv last returned
	lazy int    // where last's unchecked items start; len(last) if none

	wmu      sync.Mutex
	w        io.Writer
	wbuf     sendBuf // frames encoded and not yet written
	spare    sendBuf // the frames being written by the flusher
	enc      *msgpack.Encoder
	flushing bool      // a sender is writing; others just queue their frames
	drained  sync.Cond // signalled when the flusher takes the queue, or fails
	werr     error     // the first write error; the stream is broken after it
	start    int       // where the frame being encoded starts in wbuf
}

// NewCodec returns a Codec on rw accepting frames up to max bytes
// (DefaultMaxFrame if max <= 0).
func NewCodec(rw io.ReadWriter, max int) *Codec {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return newCodec(bufio.NewReaderSize(rw, 64<<10), rw, max)
}

// NewUnbufferedCodec is NewCodec for a connection that changes hands or
// protocols after a few messages (the handshake phase before yamux, or a
// poolworker passing the connection to a child): it never reads past the
// end of the frame it returns.
func NewUnbufferedCodec(rw io.ReadWriter, max int) *Codec {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return newCodec(rw, rw, max)
}

func newCodec(r io.Reader, w io.Writer, max int) *Codec {
	max = int(min(uint64(max), math.MaxUint32)) // the length field is 32 bits
	c := &Codec{max: max, r: r, w: w}
	c.drained.L = &c.wmu
	c.dec = msgpack.NewDecoder(&c.br)
	c.enc = msgpack.NewEncoder(&c.wbuf)
	c.enc.UseCompactInts(true)
	return c
}

// keptReadBuffer is the largest read buffer a Codec keeps between frames:
// a larger one, made for a large frame, is dropped at the next frame that
// fits in this size.
const keptReadBuffer = 1 << 20

// Recv reads the next frame and returns its kind and body. The body is valid
// until the next Recv. The body of every kind but Binary must be whole
// msgpack values nesting at most 10000 deep, or Recv returns ErrMalformed
// (see checkBody), with one exception, for speed: the items of a Run,
// Result or ResultPart (see itemsAt) are checked only when they are read,
// by [Codec.DecodeItems], which takes them with codec.DecodeFast (which
// checks what it reads itself) or checks them before the general decoder
// does, or by any read of the Decoder that reaches them. A malformed body
// found then fails that read with ErrMalformed, and every later Recv too:
// the stream must be closed, as after Recv's own errors. At a clean end of
// the stream, between frames, it returns io.EOF itself.
func (c *Codec) Recv() (Kind, []byte, error) {
	if c.br.failed != nil {
		return 0, nil, c.br.failed // a body found malformed after Recv
	}
	c.last, c.lazy = nil, 0
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	// Compare before converting: on 32-bit platforms a length of 2 GiB or
	// more would turn negative as an int.
	n32 := binary.BigEndian.Uint32(hdr[:])
	if uint64(n32) > uint64(c.max) {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n32, c.max)
	}
	n := int(n32)
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if cap(c.rbuf) < n || cap(c.rbuf) > keptReadBuffer && n <= keptReadBuffer {
		// Grow for a large frame; after one, shrink back for the next
		// small one, so that one 60 MiB result does not stay allocated.
		c.rbuf = make([]byte, n)
	}
	buf := c.rbuf[:n]
	if _, err := io.ReadFull(c.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("mp: truncated frame: %w", err)
	}
	k := Kind(buf[0])
	if k == 0 || k > maxKind {
		return 0, nil, fmt.Errorf("%w: unknown message kind %d", ErrMalformed, buf[0])
	}
	body := buf[1:]
	lazy := len(body)
	if k == KindRun || k == KindResult || k == KindResultPart {
		lazy = itemsAt(body)
	}
	if k != KindBinary && lazy == len(body) {
		if err := checkBody(body); err != nil {
			return 0, nil, fmt.Errorf("%w: %s body: %v", ErrMalformed, k, err)
		}
	}
	c.last, c.lazy = body, lazy
	c.br.kind = k
	return k, body, nil
}

// itemsAt returns where the array of items of a Run, Result or ResultPart
// body starts, if the body is what our senders write: a 3-array whose
// first two values are whole (as checkBody checks them: inside the array,
// at most maxDepth-1 deep), then an array32 header (SendItems writes no
// other) claiming no more items than bytes follow. Then the items and
// whatever follows them are left unchecked. Otherwise it returns len(b):
// the body is checked whole, by Recv.
func itemsAt(b []byte) int {
	if len(b) < 1 || b[0] != 0x93 {
		return len(b)
	}
	at := 1
	for range 2 {
		end, err := scanIn(b[at:], 1)
		if err != nil {
			return len(b)
		}
		at += end
	}
	if len(b)-at < 5 || b[at] != 0xdd || uint64(binary.BigEndian.Uint32(b[at+1:])) > uint64(len(b)-at-5) {
		return len(b)
	}
	return at
}

// ErrMalformed is returned for bytes that are not a valid frame or message.
var ErrMalformed = errors.New("mp: malformed message")

// Decoder returns the Codec's msgpack decoder, reset to read body. If
// body is the one Recv last returned, a read that reaches its unchecked
// items checks them first (see Recv).
func (c *Codec) Decoder(body []byte) *msgpack.Decoder {
	unchecked := len(body)
	if len(body) == len(c.last) && len(body) > 0 && &body[0] == &c.last[0] {
		unchecked = c.lazy
	}
	c.br.reset(body, unchecked)
	c.dec.Reset(&c.br)
	return c.dec
}

// DecodeItems decodes the array of items that the Decoder last returned by
// [Codec.Decoder] has reached into ptr, a pointer to a slice, as
// codec.DecodeSlice(dec, ptr) does: slices of scalars straight from the
// frame's bytes (codec.DecodeFast), others through dec. Items Recv left
// unchecked are checked here before the general decoder reads them, and
// if they are not whole msgpack values DecodeItems fails with ErrMalformed
// (and so does every later Recv).
func (c *Codec) DecodeItems(dec *msgpack.Decoder, ptr any) error {
	if dec == c.dec {
		// dec reads c.br without buffering: c.br's position is dec's.
		g := &c.br
		at := g.i
		if n, ok := codec.DecodeFast(g.b[at:], ptr); ok {
			g.i += n
			if at == g.unchecked {
				// DecodeFast took every byte of the array as a whole
				// value: what follows it (in what our senders write,
				// nothing) is left to check, outside the body's array.
				g.unchecked, g.inArray = g.i, false
			}
			return c.checked()
		}
		if err := c.checked(); err != nil {
			return err
		}
	}
	return codec.DecodeSlice(dec, ptr)
}

// checked checks the body's bytes that are still unchecked.
func (c *Codec) checked() error { return c.br.check() }

// Decode decodes body into v.
func (c *Codec) Decode(body []byte, v any) error {
	if err := c.Decoder(body).Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// A guard is what a Codec's decoder reads: a frame's body, of which the
// bytes from unchecked on are not known yet to be whole msgpack values.
// A read that reaches them checks them all first (checkBody), and fails
// with ErrMalformed if they are not: the general decoder never reads
// unchecked bytes. Otherwise it reads as a bytes.Reader does.
type guard struct {
	b         []byte
	i         int  // the next byte to read
	unchecked int  // len(b) once all is checked
	inArray   bool // the value at unchecked is the last of the body's array
	kind      Kind
	err       error // why b is malformed
	failed    error // the first err of any body: the stream's, for Recv
}

func (g *guard) reset(b []byte, unchecked int) {
	g.b, g.i, g.unchecked, g.inArray, g.err = b, 0, unchecked, unchecked < len(b), nil
}

// check checks the bytes from unchecked on, once, as checkBody would have
// checked them as part of the whole body.
func (g *guard) check() error {
	if g.unchecked < len(g.b) && g.err == nil {
		rest := g.b[g.unchecked:]
		var err error
		if g.inArray {
			var end int
			if end, err = scanIn(rest, 1); err == nil {
				rest = rest[end:]
			}
		}
		if err == nil {
			err = checkBody(rest)
		}
		if err != nil {
			g.err = fmt.Errorf("%w: %s body: %v", ErrMalformed, g.kind, err)
			if g.failed == nil {
				g.failed = g.err
			}
		} else {
			g.unchecked, g.inArray = len(g.b), false
		}
	}
	return g.err
}

func (g *guard) Read(p []byte) (int, error) {
	if g.i >= len(g.b) {
		return 0, io.EOF
	}
	n := min(len(p), len(g.b)-g.i)
	if g.i+n > g.unchecked {
		if err := g.check(); err != nil {
			return 0, err
		}
	}
	copy(p, g.b[g.i:g.i+n])
	g.i += n
	return n, nil
}

func (g *guard) ReadByte() (byte, error) {
	if g.i >= len(g.b) {
		return 0, io.EOF
	}
	if g.i >= g.unchecked {
		if err := g.check(); err != nil {
			return 0, err
		}
	}
	g.i++
	return g.b[g.i-1], nil
}

func (g *guard) UnreadByte() error {
	if g.i == 0 {
		return errors.New("wire: UnreadByte at the start")
	}
	g.i--
	return nil
}

// Len is the number of bytes not yet read.
func (g *guard) Len() int { return len(g.b) - g.i }

// Send encodes v with msgpack and writes it as one frame of kind k.
func (c *Codec) Send(k Kind, v any) error {
	return c.SendFunc(k, func(enc *msgpack.Encoder) error { return enc.Encode(v) })
}

// SendRaw writes b as the body of one frame of kind k.
func (c *Codec) SendRaw(k Kind, b []byte) error {
	return c.SendFunc(k, func(*msgpack.Encoder) error { c.wbuf.Write(b); return nil })
}

// SendFunc writes one frame of kind k whose body encode writes with enc. If
// encode fails nothing is written, and the error is returned.
//
// Concurrent senders are combined: while one goroutine writes, the frames
// others send queue behind it and go out in its next write, so a busy
// stream makes one system call for many messages and an idle one adds no
// delay. A sender whose frame was queued returns nil at once; if the write
// later fails, the stream is broken and every later Send returns that error.
// The queue is bounded: while it holds maxQueued bytes or more, a sender
// waits for the write in progress, so a peer that stops reading holds the
// senders up rather than making them queue without end.
func (c *Codec) SendFunc(k Kind, encode func(enc *msgpack.Encoder) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for c.flushing && len(c.wbuf.b) >= maxQueued && c.werr == nil {
		c.drained.Wait()
	}
	if c.werr != nil {
		return c.werr
	}
	start := len(c.wbuf.b)
	c.start = start
	c.wbuf.b = append(c.wbuf.b, 0, 0, 0, 0, byte(k))
	if err := safeEncode(c.enc, encode); err != nil {
		c.wbuf.b = c.wbuf.b[:start]
		return err
	}
	n := len(c.wbuf.b) - start - 4
	if n > c.max {
		c.wbuf.b = c.wbuf.b[:start]
		return fmt.Errorf("%w: a %s message of %d bytes, limit %d (use a smaller chunksize)", ErrFrameTooLarge, k, n, c.max)
	}
	binary.BigEndian.PutUint32(c.wbuf.b[start:], uint32(n))
	if c.flushing {
		return nil
	}
	c.flushing = true
	// Let runnable senders queue their frames first: under load they join
	// this write; idle, Gosched returns at once.
	c.wmu.Unlock()
	runtime.Gosched()
	c.wmu.Lock()
	for len(c.wbuf.b) > 0 && c.werr == nil {
		// The encoder keeps writing into c.wbuf (its address does not
		// change); the queued frames move to spare for writing.
		c.wbuf, c.spare = c.spare, c.wbuf
		c.drained.Broadcast()
		c.wmu.Unlock()
		_, err := c.w.Write(c.spare.b)
		c.wmu.Lock()
		c.spare.b = c.spare.b[:0]
		if err != nil {
			c.werr = err
		}
		c.shrink()
	}
	c.flushing = false
	c.drained.Broadcast() // the senders waiting on a write that failed
	return c.werr
}

// maxQueued is the bytes of frames a Codec queues behind a write in
// progress before its senders wait (one more frame may go over it).
const maxQueued = 4 << 20

// A TooLargeError is an item that alone exceeds the frame limit.
type TooLargeError struct {
	Index int // in the slice being sent
	Size  int // its encoded size, in bytes, at least
	Limit int // the frame limit
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("item %d encodes to %d bytes, over the message limit of %d bytes", e.Index, e.Size, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrFrameTooLarge }

// SliceLen returns the length of s, a slice or nil.
func SliceLen(s any) int {
	if s == nil {
		return 0
	}
	return max(reflect.ValueOf(s).Len(), 0)
}

// SendItems writes one frame of kind k whose body is an array: the fields
// values head writes, then an array of the items of s, a slice, from index from
// on, as many as fit under the frame limit, at most up to index to. If not
// every item up to to fits, the frame's kind is partial instead of k. It
// returns how many items it wrote: at least one, unless from == to; so
// does fitted, if not nil, before the frame can be written, so that the
// sender can record it before any answer arrives. An item
// that cannot be encoded fails the frame with an error wrapping ErrEncode
// (a *codec.ItemError names its index); an item that alone exceeds the
// limit, with a *TooLargeError. Nothing is written then.
//
// The items' array has a 5-byte header whatever its length, so that its
// count can be written after the items.
func (c *Codec) SendItems(k, partial Kind, fields int, head func(*msgpack.Encoder) error, s any, from, to int, fitted func(n int)) (int, error) {
	n, item := codec.ItemEncoder(s)
	to = min(to, max(n, 0))
	written := 0
	err := c.SendFunc(k, func(enc *msgpack.Encoder) error {
		if err := enc.EncodeArrayLen(fields + 1); err != nil {
			return err
		}
		if err := head(enc); err != nil {
			return err
		}
		if n < 0 {
			return enc.EncodeNil()
		}
		at := len(c.wbuf.b)
		c.wbuf.b = append(c.wbuf.b, 0xdd, 0, 0, 0, 0)
		limit := c.start + 4 + c.max
		if b, w, ok := codec.AppendItems(c.wbuf.b, s, from, to, limit); ok {
			// Slices of scalars: the same bytes as item's, written
			// straight into the frame.
			c.wbuf.b, written = b, w
			if from+w < to {
				if w == 0 {
					one, _, _ := codec.AppendItems(nil, s, from, from+1, math.MaxInt)
					return &TooLargeError{Index: from, Size: len(one), Limit: c.max}
				}
				c.wbuf.b[c.start+4] = byte(partial)
			}
			binary.BigEndian.PutUint32(c.wbuf.b[at+1:], uint32(written))
			if fitted != nil {
				fitted(written)
			}
			return nil
		}
		for i := from; i < to; i++ {
			mark := len(c.wbuf.b)
			if err := item(enc, i); err != nil {
				return fmt.Errorf("%w: %w", ErrEncode, err)
			}
			if len(c.wbuf.b) > limit {
				if written == 0 {
					return &TooLargeError{Index: i, Size: len(c.wbuf.b) - mark, Limit: c.max}
				}
				c.wbuf.b = c.wbuf.b[:mark]
				c.wbuf.b[c.start+4] = byte(partial)
				break
			}
			written++
		}
		binary.BigEndian.PutUint32(c.wbuf.b[at+1:], uint32(written))
		if fitted != nil {
			fitted(written)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return written, nil
}

// shrink drops a large write buffer so that one huge message does not pin
// its memory for the connection's life.
func (c *Codec) shrink() {
	if cap(c.spare.b) > 1<<20 {
		c.spare.b = nil
	}
	if len(c.wbuf.b) == 0 && cap(c.wbuf.b) > 1<<20 {
		// The encoder writes to &c.wbuf, which this does not move; an
		// enc.Reset would also clear its options (UseCompactInts).
		c.wbuf.b = nil
	}
}

// sendBuf is the Codec's write buffer: a byte slice the msgpack encoder
// appends to. An encoder writes each number and each header separately, and
// an append takes fewer instructions than bytes.Buffer's Write, which also
// tracks reads and grows by steps of its own.
type sendBuf struct{ b []byte }

func (s *sendBuf) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *sendBuf) WriteByte(c byte) error {
	s.b = append(s.b, c)
	return nil
}

func (s *sendBuf) WriteString(str string) (int, error) {
	s.b = append(s.b, str...)
	return len(str), nil
}

// safeEncode runs encode, turning a panic (a user type's EncodeMsgpack, say)
// into an error, so that a half-written frame never stays queued.
func safeEncode(enc *msgpack.Encoder, encode func(*msgpack.Encoder) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: encoding panicked: %v", ErrEncode, v)
		}
	}()
	return encode(enc)
}
