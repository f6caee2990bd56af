package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/mpgo/mp/internal/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// rw is a Codec's stream made of a reader and a writer.
type rw struct {
	io.Reader
	io.Writer
}

// frame builds a frame by the letter of spec.md.
func frame(k Kind, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
	b = append(b, byte(k))
	return append(b, body...)
}

// sample is a message of each kind, as the cluster sends it.
var sample = map[Kind]any{
	KindSetup:      Setup{GOOS: "linux", GOARCH: "amd64", SHA256: strings.Repeat("ab", 32), Size: 1 << 22, Args: []string{"-n", "10"}},
	KindSetupReply: SetupReply{NeedBinary: true},
	KindBinary:     []byte("\x7fELF\x02\x01\x01"),
	KindReady:      Ready{PID: 4242, Capacity: 8, GOOS: "linux", GOARCH: "arm64", Host: "node-1"},
	KindConfig:     Config{Initializer: "init", MaxTasks: 100, HeartbeatMillis: 1000, WriteTimeoutMilli: 2000, MaxFrame: 1 << 20},
	KindRun:        []any{uint64(1), "main.square", []int{1, 2, 3}},
	KindCancel:     Cancel{ID: 1<<64 - 1},
	KindResult:     []any{uint64(1), nil, []int{1, 4, 9}},
	KindRetire:     Retire{Reason: "ran 100 tasks"},
	KindError:      ErrorMsg{Message: "no space left on device"},
	KindResultPart: []any{uint64(1), nil, []int{1, 4}},
	KindGet:        Get{Store: 1 << 63, ID: 2},
	KindObject:     Object{Store: 1 << 63, ID: 2, Total: 3, Piece: []byte{1, 2, 3}},
	KindForget:     Forget{Store: 1 << 63, ID: 2},
}

func TestKindString(t *testing.T) {
	for k := Kind(0); k <= maxKind+1; k++ {
		if s := k.String(); s == "" || (k >= 1 && k <= maxKind && strings.HasPrefix(s, "Kind(")) {
			t.Errorf("Kind(%d).String() = %q", k, s)
		}
	}
	if s := Kind(200).String(); s != "Kind(200)" {
		t.Errorf("Kind(200).String() = %q", s)
	}
}

// TestFrameRoundTrip sends a message of every kind, with Send and with
// SendRaw, through both kinds of Codec, and over a pipe.
func TestFrameRoundTrip(t *testing.T) {
	if len(sample) != int(maxKind) {
		t.Fatalf("sample has %d kinds, want %d", len(sample), maxKind)
	}
	codecs := []struct {
		name string
		new  func(io.ReadWriter, int) *Codec
	}{
		{"buffered", NewCodec},
		{"unbuffered", NewUnbufferedCodec},
	}
	for _, nc := range codecs {
		for k := Kind(1); k <= maxKind; k++ {
			v := sample[k]
			t.Run(nc.name+"/"+k.String(), func(t *testing.T) {
				var buf bytes.Buffer
				c := nc.new(&buf, 0)
				if err := c.Send(k, v); err != nil {
					t.Fatal(err)
				}
				enc, err := msgpack.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.SendRaw(k, enc); err != nil {
					t.Fatal(err)
				}
				if err := c.SendRaw(k, nil); err != nil { // an empty body, as the end of a Binary upload
					t.Fatal(err)
				}
				// The frame is the spec's: length, kind, body.
				wire := buf.Bytes()
				n := binary.BigEndian.Uint32(wire)
				if wire[4] != byte(k) || int(n) < 1 || int(n)+4 > len(wire) {
					t.Fatalf("frame header % x", wire[:5])
				}
				for i := 0; i < 2; i++ {
					gk, body, err := c.Recv()
					if err != nil || gk != k {
						t.Fatalf("Recv: %v %v; want %v", gk, err, k)
					}
					got := reflect.New(reflect.TypeOf(v))
					if err := c.Decode(body, got.Interface()); err != nil {
						t.Fatal(err)
					}
					// Printed, as msgpack gives integers in an any back as
					// int8…uint64 and slices as []any.
					if fmt.Sprint(got.Elem().Interface()) != fmt.Sprint(v) {
						t.Fatalf("got %#v, want %#v", got.Elem().Interface(), v)
					}
				}
				gk, body, err := c.Recv()
				if err != nil || gk != k || len(body) != 0 {
					t.Fatalf("empty body: %v %q %v", gk, body, err)
				}
				if _, _, err := c.Recv(); err != io.EOF {
					t.Fatalf("Recv at the end of the stream: %v; want io.EOF", err)
				}
			})
		}
	}
	t.Run("pipe", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		ca, cb := NewCodec(a, 0), NewCodec(b, 0)
		go func() {
			for k := Kind(1); k <= maxKind; k++ {
				if err := ca.Send(k, sample[k]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		for k := Kind(1); k <= maxKind; k++ {
			gk, _, err := cb.Recv()
			if err != nil || gk != k {
				t.Fatalf("Recv: %v %v; want %v", gk, err, k)
			}
		}
	})
}

// TestFrameRecvErrors feeds Recv streams that are not valid frames.
func TestFrameRecvErrors(t *testing.T) {
	long := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	tests := []struct {
		name  string
		in    []byte
		max   int
		want  error // errors.Is
		wantS string
	}{
		{"empty stream", nil, 0, io.EOF, ""},
		{"truncated header", []byte{0, 0}, 0, io.ErrUnexpectedEOF, ""},
		{"truncated body", append(long(10), 6, 1, 2), 0, io.ErrUnexpectedEOF, "truncated frame"},
		{"header only", long(10), 0, io.ErrUnexpectedEOF, "truncated frame"},
		{"zero length", long(0), 0, ErrMalformed, "empty frame"},
		{"kind 0", frame(0, []byte{0xc0}), 0, ErrMalformed, "unknown message kind 0"},
		{"kind 15", frame(maxKind+1, []byte{0xc0}), 0, ErrMalformed, "unknown message kind 15"},
		{"kind 255", frame(255, nil), 0, ErrMalformed, "unknown message kind 255"},
		{"over the limit", frame(KindRun, make([]byte, 100)), 100, ErrFrameTooLarge, "101 bytes, limit 100"},
		{"2 GiB", long(1 << 31), 0, ErrFrameTooLarge, "2147483648 bytes"},
		{"4 GiB", long(1<<32 - 1), 0, ErrFrameTooLarge, "4294967295 bytes"},
	}
	for _, tt := range tests {
		for _, unbuffered := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				var c *Codec
				if unbuffered {
					c = NewUnbufferedCodec(rw{bytes.NewReader(tt.in), io.Discard}, tt.max)
				} else {
					c = NewCodec(rw{bytes.NewReader(tt.in), io.Discard}, tt.max)
				}
				_, _, err := c.Recv()
				if !errors.Is(err, tt.want) || !strings.Contains(errString(err), tt.wantS) {
					t.Fatalf("Recv: %v; want %v containing %q", err, tt.want, tt.wantS)
				}
			})
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestFrameTooLargeNoAlloc checks that a huge length is refused before
// anything of its size is allocated.
func TestFrameTooLargeNoAlloc(t *testing.T) {
	for _, n := range []uint32{1 << 31, 1<<32 - 1, DefaultMaxFrame + 1} {
		in := binary.BigEndian.AppendUint32(nil, n)
		c := NewUnbufferedCodec(rw{bytes.NewReader(in), io.Discard}, 0)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := c.Recv()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("length %d: %v; want ErrFrameTooLarge", n, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
			t.Errorf("length %d: Recv allocated %d bytes", n, got)
		}
		if cap(c.rbuf) != 0 {
			t.Errorf("length %d: read buffer of %d bytes", n, cap(c.rbuf))
		}
	}
}

// TestCodecMaxClamped: the limit never exceeds what the 32-bit length can
// say, so that SendFunc cannot write a wrapped-around length.
func TestCodecMaxClamped(t *testing.T) {
	for _, max := range []int{math.MaxInt, math.MaxInt32, -1, 0} {
		c := NewCodec(rw{bytes.NewReader(nil), io.Discard}, max)
		if c.max < 1 || uint64(c.max) > math.MaxUint32 {
			t.Errorf("NewCodec(%d): limit %d", max, c.max)
		}
	}
}

// TestFrameLimits checks the boundary: the length counts the kind byte, and
// a frame of exactly max bytes passes both ways.
func TestFrameLimits(t *testing.T) {
	const max = 1024
	var buf bytes.Buffer
	c := NewCodec(&buf, max)
	if err := c.SendRaw(KindBinary, make([]byte, max-1)); err != nil {
		t.Fatalf("SendRaw of a %d-byte frame, limit %d: %v", max, max, err)
	}
	k, body, err := c.Recv()
	if err != nil || k != KindBinary || len(body) != max-1 {
		t.Fatalf("Recv: %v, %d bytes, %v", k, len(body), err)
	}
	err = c.SendRaw(KindBinary, make([]byte, max))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("SendRaw over the limit: %v", err)
	}
	_, err = c.SendRun(1, "f", []string{"a", strings.Repeat("x", max)}, 1, 2, nil)
	var tl *TooLargeError
	if !errors.Is(err, ErrFrameTooLarge) || !errors.As(err, &tl) || tl.Index != 1 || tl.Limit != max {
		t.Fatalf("SendRun of an item over the limit: %v", err)
	}
	err = c.Send(KindResult, strings.Repeat("x", 2*max))
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Send over the limit: %v", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("refused frames wrote %d bytes", buf.Len())
	}
	// The codec still works.
	if err := c.Send(KindCancel, Cancel{ID: 5}); err != nil {
		t.Fatal(err)
	}
	var cc Cancel
	if k, body, err := c.Recv(); err != nil || k != KindCancel || c.Decode(body, &cc) != nil || cc.ID != 5 {
		t.Fatalf("after refusals: %v %v %+v", k, err, cc)
	}
}

// TestSendUnencodable: a value msgpack cannot encode writes nothing, and
// the codec (and its encoder) works afterwards.
func TestSendUnencodable(t *testing.T) {
	for _, v := range []any{
		make(chan int),
		func() {},
		[]any{1, 2, make(chan int)},
		map[string]any{"a": 1, "f": func() {}},
		struct{ C chan int }{make(chan int)},
	} {
		var buf bytes.Buffer
		c := NewCodec(&buf, 0)
		if err := c.Send(KindRun, v); err == nil {
			t.Fatalf("Send(%T): nil error", v)
		}
		if buf.Len() != 0 {
			t.Fatalf("Send(%T) wrote %d bytes", v, buf.Len())
		}
		if err := c.Send(KindRetire, Retire{Reason: "after"}); err != nil {
			t.Fatal(err)
		}
		var r Retire
		if k, body, err := c.Recv(); err != nil || k != KindRetire || c.Decode(body, &r) != nil || r.Reason != "after" {
			t.Fatalf("after Send(%T): %v %v %+v; stream % x", v, k, err, r, buf.Bytes())
		}
	}
}

// TestSendWriteError: an error of the stream is returned as is.
func TestSendWriteError(t *testing.T) {
	a, b := net.Pipe()
	b.Close()
	c := NewCodec(a, 0)
	if err := c.Send(KindCancel, Cancel{ID: 1}); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Send on a closed pipe: %v", err)
	}
}

// TestCompactIntsAfterLargeMessage: a message large enough to make the codec
// drop its write buffer must not change how later messages are encoded.
func TestCompactIntsAfterLargeMessage(t *testing.T) {
	var buf bytes.Buffer
	c := NewCodec(&buf, 0)
	small := func() []byte {
		buf.Reset()
		if err := c.Send(KindCancel, int64(1)); err != nil {
			t.Fatal(err)
		}
		return bytes.Clone(buf.Bytes())
	}
	before := small()
	if err := c.SendRaw(KindBinary, make([]byte, 2<<20)); err != nil {
		t.Fatal(err)
	}
	if after := small(); !bytes.Equal(before, after) {
		t.Fatalf("int64(1) was % x, after a 2 MiB message % x", before, after)
	}
	if want := frame(KindCancel, []byte{0x01}); !bytes.Equal(before, want) {
		t.Fatalf("int64(1) encodes as % x, want % x", before, want)
	}
}

// TestCodecConcurrentSend: frames sent at once from many goroutines arrive
// whole.
func TestCodecConcurrentSend(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ca, cb := NewCodec(a, 0), NewCodec(b, 0)
	const senders, each = 8, 50
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range each {
				var err error
				if j%2 == 0 {
					err = ca.Send(KindCancel, Cancel{ID: uint64(i*each + j)})
				} else {
					_, err = ca.SendRun(uint64(i*each+j), "f", []string{strings.Repeat("y", 3000)}, 0, 1, nil)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[uint64]bool{}
	for range senders * each {
		k, body, err := cb.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var id uint64
		switch k {
		case KindCancel:
			var c Cancel
			err = cb.Decode(body, &c)
			id = c.ID
		case KindRun:
			dec := cb.Decoder(body)
			id, _, err = DecodeRunHeader(dec)
			var args []string
			if err == nil {
				err = codec.DecodeSlice(dec, &args)
			}
			if s := strings.Join(args, ""); len(s) != 3000 {
				t.Fatalf("Run %d args of %d bytes", id, len(s))
			}
		default:
			t.Fatalf("kind %v", k)
		}
		if err != nil || seen[id] {
			t.Fatalf("id %d: %v (seen %v)", id, err, seen[id])
		}
		seen[id] = true
	}
	wg.Wait()
}

// TestUnbufferedCodecHandsOver: after frames read by an unbuffered codec,
// the rest of the stream is left unread for the next owner, as a poolworker
// needs before it passes the connection to a child.
func TestUnbufferedCodecHandsOver(t *testing.T) {
	var in bytes.Buffer
	NewCodec(&in, 0).Send(KindSetup, sample[KindSetup])
	in.Write(frame(KindBinary, []byte("abc")))
	in.Write(frame(KindBinary, nil))
	in.WriteString("the child's bytes")
	r := bytes.NewReader(in.Bytes())
	c := NewUnbufferedCodec(rw{r, io.Discard}, 0)
	for range 3 {
		if _, _, err := c.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "the child's bytes" {
		t.Fatalf("left %q", rest)
	}
}

// TestDecodeMalformed: Decode wraps msgpack's errors in ErrMalformed.
func TestDecodeMalformed(t *testing.T) {
	c := NewCodec(rw{bytes.NewReader(nil), io.Discard}, 0)
	for _, body := range [][]byte{nil, {0xc1}, {0x81}, {0x81, 0xa2, 'I', 'D', 0xa1, 'x'}, {0xdd, 0x00, 0x00, 0x10, 0x00}} {
		var v Cancel
		if err := c.Decode(body, &v); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(% x): %v; want ErrMalformed", body, err)
		}
	}
	// Unknown fields are ignored and missing ones left zero, so that a
	// field can be added to a message without a new protocol version.
	body, _ := msgpack.Marshal(map[string]any{"PID": 3, "Capacity": 2, "Later": "x"})
	var r Ready
	if err := c.Decode(body, &r); err != nil || r != (Ready{PID: 3, Capacity: 2}) {
		t.Fatalf("Decode with an unknown field: %+v %v", r, err)
	}
}
