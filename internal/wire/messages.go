package wire

import (
	"errors"
	"fmt"

	"github.com/mpgo/mp/internal/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// Setup is the driver's first message to a poolworker after the handshake:
// the executable it wants run, by content.
type Setup struct {
	GOOS, GOARCH string
	SHA256       string   // hex SHA-256 of the executable
	Size         int64    // its length in bytes
	Args         []string // the program's arguments, so that its main reaches cluster.New as the driver's did
}

// SetupReply answers Setup. If Error is set the poolworker closes the
// connection; if NeedBinary is set the driver sends the executable as
// KindBinary frames, ending with an empty one.
type SetupReply struct {
	NeedBinary bool
	Error      string
}

// Ready is a worker process's first message after the handshake (or, under
// a poolworker, after it took over the connection).
type Ready struct {
	PID      int
	Capacity int // chunks it runs at once: 1 to MaxCapacity
	GOOS     string
	GOARCH   string
	Host     string // at most MaxHost bytes
}

// Limits of what a worker process may report in Ready. A faulty or hostile
// peer's numbers are checked before use: a capacity of 2^62 once made
// pool.Map divide by zero in the driver.
const (
	MaxCapacity = 4096 // chunks one worker process runs at once
	MaxHost     = 255  // bytes of a host name (RFC 1035)
)

// Check returns an error wrapping ErrMalformed, naming the field, if r
// holds a number or a string out of its range.
func (r Ready) Check() error {
	if r.Capacity < 1 || r.Capacity > MaxCapacity {
		return fmt.Errorf("%w: Ready.Capacity %d: a worker runs 1 to %d chunks at once", ErrMalformed, r.Capacity, MaxCapacity)
	}
	if len(r.Host) > MaxHost {
		return fmt.Errorf("%w: Ready.Host of %d bytes, over %d", ErrMalformed, len(r.Host), MaxHost)
	}
	return nil
}

// Check returns an error wrapping ErrMalformed, naming the field, if c
// holds a number out of its range.
func (c Config) Check() error {
	switch {
	case c.MaxTasks < 0:
		return fmt.Errorf("%w: Config.MaxTasks %d is negative", ErrMalformed, c.MaxTasks)
	case c.HeartbeatMillis < 0:
		return fmt.Errorf("%w: Config.HeartbeatMillis %d is negative", ErrMalformed, c.HeartbeatMillis)
	case c.WriteTimeoutMilli < 0:
		return fmt.Errorf("%w: Config.WriteTimeoutMilli %d is negative", ErrMalformed, c.WriteTimeoutMilli)
	case c.MaxFrame < 0 || c.MaxFrame > 0 && c.MaxFrame < 1<<10:
		return fmt.Errorf("%w: Config.MaxFrame %d: 0 (the default) or at least 1024", ErrMalformed, c.MaxFrame)
	}
	return nil
}

// Config is the driver's answer to Ready. After it both ends run yamux on
// the connection: the driver as client, the worker as server.
type Config struct {
	Initializer       string // registered name, or ""
	MaxTasks          int    // retire after this many chunks; 0 never
	HeartbeatMillis   int    // yamux keepalive interval
	WriteTimeoutMilli int    // yamux write timeout; also the ping's
	MaxFrame          int
	Store             uint64 // the ID of the driver's store of pool.Put values
}

// Get asks the driver for the value of a Ref: value ID of store Store.
type Get struct {
	Store, ID uint64
}

// Object is a piece of a value a worker asked for with Get: Total bytes in
// all, sent in order; or, with Error set, why it cannot be had.
type Object struct {
	Store, ID uint64
	Error     string
	Total     int64
	Piece     []byte
}

// Forget tells a worker that a value it may have fetched is released.
type Forget struct {
	Store, ID uint64
}

// Cancel asks the worker to cancel the context of chunk ID.
type Cancel struct {
	ID uint64
}

// Retire tells the driver the worker takes no new chunks (MaxTasks reached);
// it exits once its running chunks are answered.
type Retire struct {
	Reason string
}

// ErrorMsg carries a fatal error to the peer, which then closes.
type ErrorMsg struct {
	Message string
}

// RemoteError is a chunk's failure as it crosses the wire.
type RemoteError struct {
	Kind    string // one of the ErrKind constants
	Index   int    // within the chunk
	Message string
	Stack   string // panics only
	// Is names the registered sentinel errors the error wraps, and Typed
	// holds its chain's values of registered error types (see
	// codec.EncodeError), so that errors.Is and errors.As hold on the
	// driver. Both are empty for errors that wrap nothing registered.
	Is    []string
	Typed []byte
}

// RemoteError kinds.
const (
	ErrKindError    = "error"    // the function returned an error
	ErrKindPanic    = "panic"    // the function panicked; Message is the value
	ErrKindCanceled = "canceled" // the function returned context.Canceled
	ErrKindDeadline = "deadline" // the function returned context.DeadlineExceeded
	ErrKindDecode   = "decode"   // the worker could not decode the arguments
	ErrKindEncode   = "encode"   // the worker could not encode the results
	ErrKindUnknown  = "unknown"  // the function is not registered in the worker
	ErrKindInit     = "init"     // the worker's initializer failed
)

// ErrEncode wraps a value that cannot be encoded (see internal/codec).
var ErrEncode = errors.New("mp: cannot encode")

// SendRun sends a Run: [id, func name, args[from:to]], with as many of
// those items as fit in one frame. It returns how many it sent, and tells
// fitted (if not nil) before the Run can reach the wire; the caller sends
// the rest in other Runs. An item that cannot be encoded gives an
// error wrapping ErrEncode (a *codec.ItemError names it); one that alone
// exceeds the frame limit, a *TooLargeError.
func (c *Codec) SendRun(id uint64, fn string, args any, from, to int, fitted func(n int)) (int, error) {
	return c.SendItems(KindRun, KindRun, 2, func(enc *msgpack.Encoder) error {
		if err := enc.EncodeUint(id); err != nil {
			return err
		}
		return enc.EncodeString(fn)
	}, args, from, to, fitted)
}

// SendResult sends a chunk's results: one Result [id, error or nil,
// results], preceded by ResultParts of the same form if the results do not
// fit in one frame. An item that cannot be encoded, or exceeds the frame
// limit alone, fails as in SendRun; the parts already sent stand, and the
// caller then sends a Result with an encode error.
func (c *Codec) SendResult(id uint64, rerr *RemoteError, results any) error {
	head := func(enc *msgpack.Encoder) error {
		if err := enc.EncodeUint(id); err != nil {
			return err
		}
		return enc.Encode(rerr)
	}
	n := SliceLen(results)
	from := 0
	for {
		sent, err := c.SendItems(KindResult, KindResultPart, 2, head, results, from, n, nil)
		if err != nil {
			return err
		}
		from += sent
		if from >= n {
			return nil
		}
	}
}

// EncodeResult writes a Result body: [id, error or nil, results], all in
// one message.
func EncodeResult(enc *msgpack.Encoder, id uint64, rerr *RemoteError, results any) error {
	if err := enc.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := enc.EncodeUint(id); err != nil {
		return err
	}
	if err := enc.Encode(rerr); err != nil {
		return err
	}
	if err := codec.EncodeSlice(enc, results); err != nil {
		return fmt.Errorf("%w: results: %w", ErrEncode, err)
	}
	return nil
}

// DecodeRunHeader reads a Run body's id and function name; the arguments
// follow, for the caller to decode with dec into the function's type.
func DecodeRunHeader(dec *msgpack.Decoder) (id uint64, fn string, err error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n != 3 {
		return 0, "", fmt.Errorf("%w: Run is not a 3-array (%v)", ErrMalformed, err)
	}
	if id, err = dec.DecodeUint64(); err != nil {
		return 0, "", fmt.Errorf("%w: Run id: %v", ErrMalformed, err)
	}
	if fn, err = dec.DecodeString(); err != nil {
		return 0, "", fmt.Errorf("%w: Run func: %v", ErrMalformed, err)
	}
	return id, fn, nil
}

// DecodeResultHeader reads a Result or ResultPart body's id and error; the
// results follow, for the caller to decode with codec.DecodeSlice into the
// chunk's result type.
func DecodeResultHeader(dec *msgpack.Decoder) (id uint64, rerr *RemoteError, err error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n != 3 {
		return 0, nil, fmt.Errorf("%w: Result is not a 3-array (%v)", ErrMalformed, err)
	}
	if id, err = dec.DecodeUint64(); err != nil {
		return 0, nil, fmt.Errorf("%w: Result id: %v", ErrMalformed, err)
	}
	if err = dec.Decode(&rerr); err != nil {
		return 0, nil, fmt.Errorf("%w: Result error: %v", ErrMalformed, err)
	}
	return id, rerr, nil
}
