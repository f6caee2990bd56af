package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	"github.com/mpgo/mp/internal/codec"
	"github.com/mpgo/mp/internal/objects"
)

// ErrReleased is returned by [Ref.Get] for a value released, or whose pool
// has exited, and for a Ref used with another pool.
var ErrReleased = objects.ErrReleased

func init() {
	if err := codec.RegisterError(ErrReleased); err != nil {
		panic(err)
	}
}

// A Ref is a handle to a read-only value put in a pool with [Put], as
// Ray's object refs: a task's argument carries the Ref (16 bytes), not the
// value, and [Ref.Get] returns the value where the task runs. The zero Ref
// refers to nothing.
type Ref[T any] struct {
	store, id uint64
}

// Put puts v in p, for tasks to share by [Ref], as Ray's ray.put or Dask's
// scatter: a large read-only input (a model, a lookup table) that every
// item needs travels once per worker process, not in every chunk. On a
// local pool nothing is copied: Get returns v itself. On a cluster pool v
// is encoded once, here (a value that cannot cross fails Put with
// [ErrEncoding]), and each worker process fetches it from the driver on
// its first Get and keeps it while the Ref lives. v must not be changed
// after Put: workers share it. [Ref.Release], or the pool's exit, frees it
// everywhere.
func Put[T any](ctx context.Context, p *Pool, v T) (Ref[T], error) {
	if err := ctx.Err(); err != nil {
		return Ref[T]{}, err
	}
	s := objects.Of(p.b)
	if s == nil {
		return Ref[T]{}, fmt.Errorf("pool.Put: %T keeps no values", p.b)
	}
	if err := codec.CheckInterfaces(reflect.TypeFor[T]()); err != nil {
		return Ref[T]{}, fmt.Errorf("pool.Put: a %v cannot cross to another process: %w", reflect.TypeFor[T](), err)
	}
	var enc []byte
	if s.Encodes() {
		var err error
		if enc, err = codec.EncodeBytes([]T{v}); err != nil {
			return Ref[T]{}, fmt.Errorf("pool.Put: %w", err)
		}
	}
	id, err := s.Put(v, enc)
	if err != nil {
		return Ref[T]{}, err
	}
	return Ref[T]{store: s.ID(), id: id}, nil
}

// Get returns the value r refers to. In the process that put it (local
// workers, or the driver) it returns the value itself; in a cluster's
// worker process, the first Get of a Ref fetches it from the driver (ctx
// bounds the wait) and later ones return the same value. It returns an
// error wrapping [ErrReleased] once the value is released or its pool has
// exited, and for a Ref of another pool (seen through ctx when it is the
// context a pool gave the function).
func (r Ref[T]) Get(ctx context.Context) (T, error) {
	var zero T
	if r.id == 0 {
		return zero, errors.New("pool: the zero Ref refers to no value")
	}
	if in := objects.StoreFrom(ctx); in != 0 && in != r.store {
		return zero, fmt.Errorf("%w: the Ref belongs to another pool", ErrReleased)
	}
	if s := objects.ByID(r.store); s != nil {
		v, err := s.Value(r.id)
		if err != nil {
			return zero, err
		}
		return v.(T), nil
	}
	v, err := objects.Fetch(ctx, r.store, r.id, func(b []byte) (any, error) {
		var out []T
		if err := codec.DecodeBytes(b, &out); err != nil {
			return nil, err
		}
		if len(out) != 1 {
			return nil, fmt.Errorf("%w: a Ref's value came as %d values", ErrEncoding, len(out))
		}
		return out[0], nil
	})
	if err != nil {
		return zero, err
	}
	return v.(T), nil
}

// Release frees the value r refers to, in this process and in every worker
// process that fetched it. Later Gets fail with [ErrReleased]. It must be
// called in the process that put the value; releasing again does nothing.
func (r Ref[T]) Release() {
	if s := objects.ByID(r.store); s != nil {
		s.Release(r.id)
	}
}

// MarshalBinary encodes the Ref (not its value) for a task's argument.
func (r Ref[T]) MarshalBinary() ([]byte, error) {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, r.store)
	binary.LittleEndian.PutUint64(b[8:], r.id)
	return b, nil
}

// UnmarshalBinary decodes a Ref encoded by MarshalBinary.
func (r *Ref[T]) UnmarshalBinary(b []byte) error {
	if len(b) != 16 {
		return fmt.Errorf("%w: a Ref is 16 bytes, got %d", ErrEncoding, len(b))
	}
	r.store, r.id = binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	return nil
}
