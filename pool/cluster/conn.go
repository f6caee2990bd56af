package cluster

import (
	"errors"
	"fmt"
	"github.com/mpgo/mp/internal/backend"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/mpgo/mp/internal/codec"
	"github.com/mpgo/mp/internal/objects"
	"github.com/mpgo/mp/internal/secure"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
)

// wconn is the driver's side of one connection to a worker process.
type wconn struct {
	p        *driver
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
	removed   bool      // no longer in sched.conns: its slots left the total

	lastRecv atomic.Int64 // unix nanoseconds of the last message received
	started  time.Time

	mu       sync.Mutex
	inflight map[uint64]*flight
	sent     int
	retiring bool
	drained  bool // retiring because its member is drained
	dead     bool
	killedBy error         // why the driver closed it, if it did (ChunkTimeout)
	closed   chan struct{} // closed when the connection is finished with
}

// flight is a chunk, or a part of one, sent to a worker and not yet
// answered: the items lo to hi of its task. A task whose items do not fit in
// one message travels as several flights, each run as a chunk of its own.
type flight struct {
	id       uint64
	sent     time.Time
	t        *backend.Task
	lo, hi   int
	attempts int
	stop     func() bool // stops the cancel hook
	res      any         // results received so far, a *[]R
	resErr   error       // why results could not be decoded
	err      error       // how a part of a split task ended
	parts    *parts      // set when the task was split across flights
	pinned   bool        // an actor's call: it holds no slot, and is never re-run elsewhere
}

// parts collects the results of a task split across flights.
type parts struct {
	mu       sync.Mutex
	got      []*flight // answered, in any order
	answered int       // items answered
}

// finish completes f's task with f's results and err, or, for a part of a
// split task, once every part is answered: with the results of the parts
// in order, up to the first part that failed, and its error.
//
// Results are decoded into the call's own (Task.ResultsAt), where an
// earlier attempt of the same items, lost with its connection, or a later
// part of a split task may have decoded some: on an error, the results past
// those that stand are zeroed, as if never written.
func (f *flight) finish(err error) {
	if err != nil {
		var te *pool.TaskError
		if errors.As(err, &te) {
			te.Index += f.lo
		}
	}
	if f.parts == nil {
		if err != nil {
			f.clearAfter(f.res)
		}
		f.t.Complete(f.res, err)
		return
	}
	ps := f.parts
	ps.mu.Lock()
	f.err = err
	ps.got = append(ps.got, f)
	ps.answered += f.hi - f.lo
	all := ps.answered == f.t.Len()
	got := ps.got
	ps.mu.Unlock()
	if !all {
		return
	}
	slices.SortFunc(got, func(a, b *flight) int { return a.lo - b.lo })
	joined := reflect.ValueOf(f.t.NewResults()).Elem()
	for i, g := range got {
		if g.res != nil {
			joined = reflect.AppendSlice(joined, reflect.ValueOf(g.res).Elem())
		}
		if g.err != nil {
			g.clearAfter(g.res)
			for _, h := range got[i+1:] {
				h.clearAfter(nil)
			}
			f.t.Complete(joined.Interface(), g.err)
			return
		}
	}
	f.t.Complete(joined.Interface(), nil)
}

// clearAfter zeroes the call's results of f's items past the len(*res)
// first (all of them for a nil res).
func (f *flight) clearAfter(res any) {
	n := 0
	if res != nil {
		n = reflect.ValueOf(res).Elem().Len()
	}
	if n < f.hi-f.lo {
		reflect.ValueOf(f.t.ResultsAt(f.lo, f.hi)).Elem().Slice(n, f.hi-f.lo).Clear()
	}
}

// start begins a session on conn, already authenticated: it waits for
// Ready, sends Config and opens the task stream.
//
// A poolworker reports a worker process that does not start within 10 s
// (spec.md), so Ready is awaited longer there than from an embedded worker.
func (p *driver) startConn(conn net.Conn, boot *wire.Codec, name string, readyWithin time.Duration) (*wconn, error) {
	conn.SetDeadline(time.Now().Add(readyWithin))
	k, body, err := boot.Recv()
	if err != nil {
		return nil, fmt.Errorf("%s: waiting for the worker process to start: %w", name, err)
	}
	switch k {
	case wire.KindError:
		var e wire.ErrorMsg
		boot.Decode(body, &e)
		return nil, fmt.Errorf("%s: %s", name, e.Message)
	case wire.KindSetupReply:
		// A poolworker that could not start the worker process says why
		// here (spec.md, Poolworkers, step 4).
		var r wire.SetupReply
		if err := boot.Decode(body, &r); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s refused: %s", name, r.Error)
	}
	if k != wire.KindReady {
		return nil, fmt.Errorf("%w: want Ready, got %s", wire.ErrMalformed, k)
	}
	var ready wire.Ready
	if err := boot.Decode(body, &ready); err != nil {
		return nil, err
	}
	if err := ready.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := p.s
	cfg := wire.Config{
		Initializer:       p.cfg.InitializerName,
		MaxTasks:          p.cfg.MaxTasksPerWorker,
		HeartbeatMillis:   int(s.heartbeat / time.Millisecond),
		WriteTimeoutMilli: int(s.heartbeatTimeout / time.Millisecond),
		MaxFrame:          s.maxFrame,
		Store:             p.objects.ID(),
	}
	if err := boot.Send(wire.KindConfig, cfg); err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	if sc, ok := conn.(*secure.Conn); ok {
		sc.ReadAhead() // it stays with this process from here
	}
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
	w.p.wg.Add(1) // the caller holds a count: wg is not 0
	go w.relayOutput()
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
	w.p.members.up()
	if d := w.p.s.chunkTimeout; d > 0 {
		go w.watchChunks(d)
	}
	err := w.read()
	w.kill()
	w.mu.Lock()
	if w.killedBy != nil {
		err = w.killedBy
	}
	w.mu.Unlock()
	w.p.sched.remove(w)
	silent := time.Since(time.Unix(0, w.lastRecv.Load()))
	w.mu.Lock()
	lost := make([]*flight, 0, len(w.inflight))
	for _, f := range w.inflight {
		lost = append(lost, f)
	}
	w.inflight = map[uint64]*flight{}
	retired, drained := w.retiring, w.drained
	w.mu.Unlock()
	switch {
	case retired && len(lost) == 0 && drained:
		w.p.members.down(w.name, errors.New("drained"))
	case retired && len(lost) == 0:
		w.p.members.down(w.name, errors.New("retired"))
	default:
		w.p.members.down(w.name, err)
	}
	if retired && len(lost) == 0 {
		if drained {
			w.p.logf(slog.LevelInfo, "worker drained", "worker", w.name)
		} else {
			w.p.logf(slog.LevelInfo, "worker retired", "worker", w.name)
		}
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
		case wire.KindResult, wire.KindResultPart:
			if err := w.result(body, k == wire.KindResultPart); err != nil {
				return err
			}
		case wire.KindGet:
			var g wire.Get
			if err := w.codec.Decode(body, &g); err != nil {
				return err
			}
			go w.serveObject(g)
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

// result handles a Result, or with part set a ResultPart: results that
// precede the chunk's Result because they did not fit in one message.
func (w *wconn) result(body []byte, part bool) error {
	dec := w.codec.Decoder(body)
	id, rerr, err := wire.DecodeResultHeader(dec)
	if err != nil {
		return err
	}
	w.mu.Lock()
	f := w.inflight[id]
	if !part {
		delete(w.inflight, id)
		if w.maxTasks > 0 && w.sent >= w.maxTasks {
			// The worker retires after MaxTasks chunks; do not wait for it
			// to say so.
			w.retiring = true
		}
	}
	idle := w.retiring && len(w.inflight) == 0
	w.mu.Unlock()
	if f == nil {
		return fmt.Errorf("%w: result for unknown chunk %d", wire.ErrMalformed, id)
	}
	if f.resErr == nil {
		if f.res == nil {
			// The call's own results lo to hi: decoded in place.
			f.res = f.t.ResultsAt(f.lo, f.hi)
		}
		before := wire.SliceLen(reflect.ValueOf(f.res).Elem().Interface())
		if err := w.codec.DecodeItems(dec, f.res); err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				// Not msgpack (Recv left the items for DecodeItems to
				// check): the connection ends as for a malformed frame,
				// and the chunk is re-run elsewhere with the others.
				w.mu.Lock()
				w.inflight[id] = f
				w.mu.Unlock()
				return err
			}
			f.resErr = encodingError(fmt.Sprintf("a result of %s from worker %s", funcName(f.t), w.name), err, before)
		}
	}
	if part {
		return nil
	}
	f.stop()
	terr := f.resErr
	if rerr != nil {
		terr = fromRemote(rerr, w.name)
	}
	f.finish(terr)
	if !f.pinned {
		w.p.sched.done(w, time.Since(f.sent))
	}
	if idle {
		w.kill()
	}
	return nil
}

// encodingError makes an error of the codec a *pool.TaskError naming the
// item, counted from base, and what could not cross.
func encodingError(what string, err error, base int) error {
	var ie *codec.ItemError
	if errors.As(err, &ie) {
		return &pool.TaskError{Index: base + ie.Index, Err: fmt.Errorf("cluster: %s cannot cross: %w", what, ie.Err)}
	}
	return fmt.Errorf("cluster: %s cannot cross: %w", what, err)
}

// objectPiece is the largest piece of a value sent in one Object.
const objectPiece = 1 << 20

// serveObject sends the worker the value of a Ref it asked for, in pieces,
// or why it cannot.
func (w *wconn) serveObject(g wire.Get) {
	s := w.p.objects
	var b []byte
	var err error
	if g.Store != s.ID() {
		err = fmt.Errorf("%w: the Ref belongs to another pool", objects.ErrReleased)
	} else {
		b, err = s.Encoded(g.ID)
	}
	if err != nil {
		w.codec.Send(wire.KindObject, wire.Object{Store: g.Store, ID: g.ID, Error: err.Error()})
		return
	}
	piece := objectPiece
	if m := w.p.s.maxFrame; m > 0 {
		piece = min(piece, m/2) // MaxMessage is 1 KiB or more
	}
	for off := 0; ; off += piece {
		end := min(off+piece, len(b))
		if w.codec.Send(wire.KindObject, wire.Object{Store: g.Store, ID: g.ID, Total: int64(len(b)), Piece: b[off:end]}) != nil || end == len(b) {
			return
		}
	}
}

func funcName(t *backend.Task) string {
	if f, err := t.Func(); err == nil {
		return f.Name()
	}
	return "?"
}

// send sends a chunk, or as much of it as fits in one message: the rest
// becomes a flight of its own, dispatched like a lost chunk. It returns
// false if the connection cannot take it (it is dead or retiring); the
// caller then tries another.
func (w *wconn) send(f *flight) (ok bool) {
	fn, err := f.t.Func()
	if err != nil {
		f.t.Fail(err)
		w.free(f)
		return true
	}
	if err := f.t.Context().Err(); err != nil {
		f.t.Fail(err) // its call has ended
		w.free(f)
		return true
	}
	w.mu.Lock()
	if w.dead || w.retiring || (w.maxTasks > 0 && w.sent >= w.maxTasks) {
		w.mu.Unlock()
		w.free(f)
		return false
	}
	w.sent++
	f.id = w.p.nextID.Add(1)
	id := f.id
	f.stop = f.t.AfterCancel(func() {
		if err := w.codec.Send(wire.KindCancel, wire.Cancel{ID: id}); err != nil && isTransportErr(err) {
			w.kill() // a write timeout leaves the session unusable (yamux#142)
		}
	})
	f.sent = time.Now()
	f.res, f.resErr = nil, nil
	w.inflight[f.id] = f
	// Once the mutex is released, serve may take f for lost (if the
	// connection dies) and another send may change it: from here on, f is
	// read or written only under the mutex and while still in w.inflight.
	lo, hi := f.lo, f.hi
	w.mu.Unlock()
	var rest *flight
	_, err = w.codec.SendRun(id, fn.Name(), f.t.Args(), lo, hi, func(n int) {
		if lo+n == hi {
			return
		}
		// The rest did not fit: it travels as another flight. Both
		// belong to one task now, which completes when both are
		// answered. This runs before the Run can reach the worker, so
		// the answer finds the flight cut to what was sent.
		w.mu.Lock()
		if w.inflight[id] != f {
			// The connection died meanwhile and serve took the flight
			// for lost: it is re-run whole elsewhere, so it must not be
			// cut.
			w.mu.Unlock()
			return
		}
		if f.parts == nil {
			f.parts = &parts{}
		}
		rest = &flight{t: f.t, lo: f.lo + n, hi: f.hi, attempts: f.attempts, parts: f.parts}
		f.hi = f.lo + n
		w.mu.Unlock()
	})
	if rest != nil {
		go func() {
			if err := w.p.dispatch(rest.t.Context(), rest); err != nil {
				rest.t.Fail(err)
			}
		}()
	}
	if err != nil {
		w.mu.Lock()
		_, mine := w.inflight[id]
		delete(w.inflight, id)
		w.mu.Unlock()
		if isTransportErr(err) {
			w.kill()
			if mine {
				f.stop()
				w.p.lost(f, w, err)
			}
			return true
		}
		// Not sent: an item cannot be encoded, or is too large. The worker
		// never saw the chunk, so it does not count for MaxTasks.
		w.mu.Lock()
		w.sent--
		w.mu.Unlock()
		if mine {
			f.stop()
			f.finish(sendError(fn.Name(), err, f.lo))
		}
		w.free(f)
		return true
	}
	return true
}

// free releases the slot f was sent in, unless f is an actor's call,
// which holds none.
func (w *wconn) free(f *flight) {
	if !f.pinned {
		w.p.sched.release(w)
	}
}

// sendError explains why an item of a chunk could not be sent, as a
// *pool.TaskError naming it, counted from lo, the flight's first item.
func sendError(fn string, err error, lo int) error {
	var tl *wire.TooLargeError
	if errors.As(err, &tl) {
		return &pool.TaskError{Index: tl.Index - lo, Err: fmt.Errorf("%w: the argument of %s encodes to %d bytes or more, over the message limit of %d bytes; raise it with cluster.MaxMessage", pool.ErrEncoding, fn, tl.Size, tl.Limit)}
	}
	return encodingError("the argument of "+fn, err, -lo)
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

// drain stops giving the connection new chunks and closes it once the
// chunks it holds are answered (as when the worker retires).
func (w *wconn) drain() {
	w.mu.Lock()
	w.retiring, w.drained = true, true
	idle := len(w.inflight) == 0
	w.mu.Unlock()
	if idle {
		w.kill()
	}
}

// watchChunks closes the connection once a chunk has been in flight on it
// for longer than d (cluster.ChunkTimeout), checking every d/4, until the
// connection is finished with.
func (w *wconn) watchChunks(d time.Duration) {
	t := time.NewTicker(max(d/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-w.closed:
			return
		case now := <-t.C:
			w.mu.Lock()
			var oldest time.Time
			for _, f := range w.inflight {
				if oldest.IsZero() || f.sent.Before(oldest) {
					oldest = f.sent
				}
			}
			overdue := !oldest.IsZero() && now.Sub(oldest) > d
			if overdue {
				w.killedBy = fmt.Errorf("a chunk went unanswered for %v, over cluster.ChunkTimeout(%v), although the worker answered heartbeats",
					now.Sub(oldest).Round(time.Millisecond), d)
			}
			w.mu.Unlock()
			if overdue {
				w.kill()
				return
			}
		}
	}
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
