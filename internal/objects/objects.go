// Package objects keeps the shared, read-only values of pool.Put: in the
// process that owns a pool (a store per pool, holding the value itself and,
// for pools whose workers are other processes, its encoding), and in a
// worker process (a cache of the values it fetched from its driver).
package objects

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ErrReleased is returned for a value released (or whose pool closed).
var ErrReleased = errors.New("pool: the Ref was released, or its pool closed")

// A Store holds one pool's values.
type Store struct {
	id        uint64 // random, so that a Ref of another pool is told apart
	encodes   bool
	onRelease func(id uint64)

	mu     sync.Mutex
	objs   map[uint64]*object
	next   uint64
	closed bool

	served atomic.Int64 // bytes of encodings sent to worker processes
}

type object struct {
	value any
	enc   []byte
}

var stores struct {
	mu      sync.RWMutex
	byOwner map[any]*Store
	byID    map[uint64]*Store
}

func init() {
	stores.byOwner = map[any]*Store{}
	stores.byID = map[uint64]*Store{}
}

// NewStore makes the store of owner, a pool. If encodes is set, each value
// is put with its encoding, for workers in other processes to fetch.
// onRelease, if not nil, is called with the ID of each value released.
func NewStore(owner any, encodes bool, onRelease func(id uint64)) *Store {
	var b [8]byte
	rand.Read(b[:])
	s := &Store{id: binary.LittleEndian.Uint64(b[:]) | 1, encodes: encodes, onRelease: onRelease, objs: map[uint64]*object{}}
	stores.mu.Lock()
	stores.byOwner[owner] = s
	stores.byID[s.id] = s
	stores.mu.Unlock()
	return s
}

// Of returns owner's store, or nil.
func Of(owner any) *Store {
	stores.mu.RLock()
	defer stores.mu.RUnlock()
	return stores.byOwner[owner]
}

// ByID returns the store with the given ID in this process, or nil.
func ByID(id uint64) *Store {
	stores.mu.RLock()
	defer stores.mu.RUnlock()
	return stores.byID[id]
}

// ID returns the store's ID.
func (s *Store) ID() uint64 { return s.id }

// Served returns how many bytes of encoded values the store has sent.
func (s *Store) Served() int64 { return s.served.Load() }

// Encodes reports whether values are put with their encoding.
func (s *Store) Encodes() bool { return s.encodes }

// Put stores v, with enc, its encoding, if the store encodes, and returns
// its ID.
func (s *Store) Put(v any, enc []byte) (uint64, error) {
	o := &object{value: v, enc: enc}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrReleased
	}
	s.next++
	s.objs[s.next] = o
	return s.next, nil
}

// Value returns the value stored under id.
func (s *Store) Value(id uint64) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objs[id]
	if !ok {
		return nil, ErrReleased
	}
	return o.value, nil
}

// Encoded returns the encoding of the value stored under id, and counts it
// as served.
func (s *Store) Encoded(id uint64) ([]byte, error) {
	s.mu.Lock()
	o, ok := s.objs[id]
	s.mu.Unlock()
	if !ok {
		return nil, ErrReleased
	}
	if o.enc == nil {
		return nil, errors.New("pool: this pool's values are not encoded")
	}
	s.served.Add(int64(len(o.enc)))
	return o.enc, nil
}

// Release forgets the value stored under id, everywhere. It reports
// whether there was one.
func (s *Store) Release(id uint64) bool {
	s.mu.Lock()
	_, ok := s.objs[id]
	delete(s.objs, id)
	s.mu.Unlock()
	if ok && s.onRelease != nil {
		s.onRelease(id)
	}
	return ok
}

// Close forgets every value and the store itself.
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	s.objs = map[uint64]*object{}
	s.mu.Unlock()
	stores.mu.Lock()
	for owner, st := range stores.byOwner {
		if st == s {
			delete(stores.byOwner, owner)
		}
	}
	delete(stores.byID, s.id)
	stores.mu.Unlock()
}

// A Fetcher gets the encoding of value id of store from the process that
// owns the store (a worker process's driver).
type Fetcher func(ctx context.Context, store, id uint64) ([]byte, error)

// The worker side: this process's fetcher, and the values it fetched.
var worker struct {
	mu      sync.Mutex
	fetch   Fetcher
	cache   map[[2]uint64]*entry
	fetched atomic.Int64 // bytes fetched
}

type entry struct {
	ready chan struct{}
	value any
	err   error
}

// SetFetcher makes f this process's way to values of stores it does not
// hold: a worker process sets its driver connection's.
func SetFetcher(f Fetcher) {
	worker.mu.Lock()
	worker.fetch = f
	worker.cache = map[[2]uint64]*entry{}
	worker.mu.Unlock()
}

// Fetched returns how many bytes this process has fetched.
func Fetched() int64 { return worker.fetched.Load() }

// Fetch returns value id of store: fetched once per process, decoded by
// decode, and kept until Forget. Concurrent calls for one value share one
// fetch.
func Fetch(ctx context.Context, store, id uint64, decode func([]byte) (any, error)) (any, error) {
	key := [2]uint64{store, id}
	worker.mu.Lock()
	if worker.fetch == nil {
		worker.mu.Unlock()
		return nil, fmt.Errorf("%w: this process has no pool that holds it (a Ref is used in the pool it was put in, or in that pool's workers)", ErrReleased)
	}
	e, ok := worker.cache[key]
	if !ok {
		e = &entry{ready: make(chan struct{})}
		worker.cache[key] = e
		fetch := worker.fetch
		go func() {
			b, err := fetch(context.Background(), store, id)
			if err == nil {
				worker.fetched.Add(int64(len(b)))
				e.value, e.err = decode(b)
			} else {
				e.err = err
			}
			if e.err != nil {
				worker.mu.Lock()
				delete(worker.cache, key) // a later Get tries again
				worker.mu.Unlock()
			}
			close(e.ready)
		}()
	}
	worker.mu.Unlock()
	select {
	case <-e.ready:
		return e.value, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Forget drops a fetched value, released by its pool.
func Forget(store, id uint64) {
	worker.mu.Lock()
	delete(worker.cache, [2]uint64{store, id})
	worker.mu.Unlock()
}

type storeKey struct{}

// WithStore returns ctx carrying the ID of the store of the pool a task
// runs for, so that a Ref of another pool is caught.
func WithStore(ctx context.Context, id uint64) context.Context {
	return context.WithValue(ctx, storeKey{}, id)
}

// StoreFrom returns the store ID ctx carries, or 0.
func StoreFrom(ctx context.Context) uint64 {
	id, _ := ctx.Value(storeKey{}).(uint64)
	return id
}
