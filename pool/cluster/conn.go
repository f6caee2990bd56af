package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/vmihailenco/msgpack/v5"
)

// wconn is the driver's side of one connection to a worker process.
type wconn struct {
	p        *Pool
	name     string
	sess     *yamux.Session
	codec    *wire.Codec
	capacity int
	maxTasks int

	// guarded by p.sched.mu
	credits   int       // chunks it may hold: 2×capacity, deeper while chunks are quick
	slots     int       // chunks reserved or in flight
	busySince time.Time // when slots last rose from 0
	idleSince time.Time // when slots last fell to 0

	lastRecv atomic.Int64 // unix nanoseconds of the last message received
	started  time.Time

	mu       sync.Mutex
	inflight map[uint64]*flight
	sent     int
	retiring bool
	dead     bool
	closed   chan struct{} // closed when the connection is finished with
}

// flight is a chunk sent to a worker and not yet answered.
type flight struct {
	id       uint64
	sent     time.Time
	t        *pool.Task
	attempts int
	stop     func() bool // stops the cancel hook
}

// start begins a session on conn, already authenticated: it waits for
// Ready, sends Config and opens the task stream.
func (p *Pool) startConn(conn net.Conn, boot *wire.Codec, name string) (*wconn, error) {
	conn.SetDeadline(time.Now().Add(wire.DefaultHandshakeTimeout))
	k, body, err := boot.Recv()
	if err != nil {
		return nil, fmt.Errorf("waiting for the worker process to start: %w", err)
	}
	if k == wire.KindError {
		var e wire.ErrorMsg
		boot.Decode(body, &e)
		return nil, fmt.Errorf("worker refused: %s", e.Message)
	}
	if k != wire.KindReady {
		return nil, fmt.Errorf("%w: want Ready, got %s", wire.ErrMalformed, k)
	}
	var ready wire.Ready
	if err := boot.Decode(body, &ready); err != nil {
		return nil, err
	}
	if ready.Capacity < 1 {
		return nil, fmt.Errorf("%w: worker capacity %d", wire.ErrMalformed, ready.Capacity)
	}
	s := p.s
	cfg := wire.Config{
		Initializer:       p.cfg.InitializerName,
		MaxTasks:          p.cfg.MaxTasksPerWorker,
		HeartbeatMillis:   int(s.heartbeat / time.Millisecond),
		WriteTimeoutMilli: int(s.heartbeatTimeout / time.Millisecond),
		MaxFrame:          s.maxFrame,
	}
	if err := boot.Send(wire.KindConfig, cfg); err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	sess, err := yamux.Client(&frameConn{Conn: conn}, yamuxConfig(s.heartbeat, s.heartbeatTimeout))
	if err != nil {
		return nil, err
	}
	stream, err := sess.Open()
	if err != nil {
		sess.Close()
		return nil, err
	}
	if ready.Host != "" {
		name = fmt.Sprintf("%s (pid %d on %s)", name, ready.PID, ready.Host)
	}
	w := &wconn{
		p:        p,
		name:     name,
		sess:     sess,
		codec:    wire.NewCodec(stream, s.maxFrame),
		capacity: ready.Capacity,
		credits:  minDepth * ready.Capacity,
		maxTasks: p.cfg.MaxTasksPerWorker,
		inflight: map[uint64]*flight{},
		closed:   make(chan struct{}),
	}
	return w, nil
}

// serve reads results until the connection ends, and then hands the chunks
// still in flight back to the pool to be re-run. It returns why the
// connection ended; nil for a worker that retired.
func (w *wconn) serve() error {
	go func() {
		select {
		case <-w.sess.CloseChan():
			w.kill()
		case <-w.closed:
		}
	}()
	w.started = time.Now()
	w.lastRecv.Store(w.started.UnixNano())
	w.p.logf(slog.LevelInfo, "worker connected", "worker", w.name, "capacity", w.capacity)
	w.p.sched.add(w)
	err := w.read()
	w.kill()
	w.p.sched.remove(w)
	silent := time.Since(time.Unix(0, w.lastRecv.Load()))
	w.mu.Lock()
	lost := make([]*flight, 0, len(w.inflight))
	for _, f := range w.inflight {
		lost = append(lost, f)
	}
	w.inflight = map[uint64]*flight{}
	retired := w.retiring
	w.mu.Unlock()
	if retired && len(lost) == 0 {
		w.p.logf(slog.LevelInfo, "worker retired", "worker", w.name)
		return nil
	}
	select {
	case <-w.p.stop:
		if len(lost) == 0 {
			w.p.logf(slog.LevelInfo, "worker closed", "worker", w.name)
			return err
		}
	default:
	}
	if silent >= w.p.s.heartbeatTimeout {
		err = fmt.Errorf("silent for %v (heartbeat timeout %v): %w", silent.Round(time.Millisecond), w.p.s.heartbeatTimeout, err)
	}
	w.p.logf(slog.LevelWarn, "worker lost", "worker", w.name, "cause", err, "silent", silent.Round(time.Millisecond), "chunks_rerun", len(lost))
	for _, f := range lost {
		f.stop()
		w.p.lost(f, w, err)
	}
	return err
}

func (w *wconn) read() error {
	for {
		k, body, err := w.codec.Recv()
		if err != nil {
			return err
		}
		w.lastRecv.Store(time.Now().UnixNano())
		switch k {
		case wire.KindResult:
			if err := w.result(body); err != nil {
				return err
			}
		case wire.KindRetire:
			w.mu.Lock()
			w.retiring = true
			idle := len(w.inflight) == 0
			w.mu.Unlock()
			if idle {
				return nil
			}
		default:
			return fmt.Errorf("%w: unexpected %s from worker", wire.ErrMalformed, k)
		}
	}
}

func (w *wconn) result(body []byte) error {
	dec := w.codec.Decoder(body)
	id, rerr, err := wire.DecodeResultHeader(dec)
	if err != nil {
		return err
	}
	w.mu.Lock()
	f := w.inflight[id]
	delete(w.inflight, id)
	if w.maxTasks > 0 && w.sent >= w.maxTasks {
		// The worker retires after MaxTasks chunks; do not wait for it to
		// say so.
		w.retiring = true
	}
	idle := w.retiring && len(w.inflight) == 0
	w.mu.Unlock()
	if f == nil {
		return fmt.Errorf("%w: result for unknown chunk %d", wire.ErrMalformed, id)
	}
	f.stop()
	res := f.t.NewResults()
	var derr error
	if err := wire.DecodeSlice(dec, res); err != nil {
		derr = fmt.Errorf("cluster: cannot decode the results of %s from worker %s: %v", funcName(f.t), w.name, err)
	}
	var terr error
	if rerr != nil {
		terr = fromRemote(rerr, w.name)
	}
	if terr == nil {
		terr = derr
	}
	f.t.Complete(res, terr)
	w.p.sched.done(w, time.Since(f.sent))
	if idle {
		w.kill()
	}
	return nil
}

func funcName(t *pool.Task) string {
	if f, err := t.Func(); err == nil {
		return f.Name()
	}
	return "?"
}

// send sends a chunk. It returns false if the connection cannot take it (it
// is dead or retiring); the caller then tries another.
func (w *wconn) send(f *flight) (ok bool) {
	fn, err := f.t.Func()
	if err != nil {
		f.t.Fail(err)
		w.p.sched.release(w)
		return true
	}
	if err := f.t.Context().Err(); err != nil {
		f.t.Fail(err) // its call has ended
		w.p.sched.release(w)
		return true
	}
	w.mu.Lock()
	if w.dead || w.retiring || (w.maxTasks > 0 && w.sent >= w.maxTasks) {
		w.mu.Unlock()
		w.p.sched.release(w)
		return false
	}
	w.sent++
	f.id = w.p.nextID.Add(1)
	id := f.id
	f.stop = context.AfterFunc(f.t.Context(), func() {
		if err := w.codec.Send(wire.KindCancel, wire.Cancel{ID: id}); err != nil && isTransportErr(err) {
			w.kill() // a write timeout leaves the session unusable (yamux#142)
		}
	})
	f.sent = time.Now()
	w.inflight[f.id] = f
	w.mu.Unlock()
	err = w.codec.SendFunc(wire.KindRun, func(enc *msgpack.Encoder) error {
		return wire.EncodeRun(enc, f.id, fn.Name(), f.t.Args())
	})
	if err != nil {
		w.mu.Lock()
		_, mine := w.inflight[f.id]
		delete(w.inflight, f.id)
		w.mu.Unlock()
		if isTransportErr(err) {
			w.kill()
			if mine {
				f.stop()
				w.p.lost(f, w, err)
			}
			return true
		}
		// Not sent: the arguments cannot be encoded, or are too large. The
		// worker never saw the chunk, so it does not count for MaxTasks.
		w.mu.Lock()
		w.sent--
		w.mu.Unlock()
		if mine {
			f.stop()
			f.t.Fail(fmt.Errorf("cluster: %w", err))
		}
		w.p.sched.release(w)
		return true
	}
	return true
}

// isTransportErr tells a failure of the connection from a message that
// could not be encoded (which fails only its chunk).
func isTransportErr(err error) bool {
	return !errors.Is(err, wire.ErrEncode) && !errors.Is(err, wire.ErrFrameTooLarge)
}

// usable reports whether the connection may be given a new chunk.
func (w *wconn) usable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.dead && !w.retiring && (w.maxTasks == 0 || w.sent < w.maxTasks)
}

// kill ends the connection. It is idempotent.
func (w *wconn) kill() {
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return
	}
	w.dead = true
	w.mu.Unlock()
	close(w.closed)
	w.sess.Close()
}
