package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/mpgo/mp/internal/codec"
	"github.com/vmihailenco/msgpack/v5"
)

type point struct {
	X, Y float64
	Tag  string
}

func TestRunRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		id   uint64
		fn   string
		args any
		into func() any // a pointer of the args' type, as the worker has it
	}{
		{"ints", 1, "main.square", []int{1, 2, 3}, func() any { return new([]int) }},
		{"zero id, no args", 0, "f", []int{}, func() any { return new([]int) }},
		{"max id", 1<<64 - 1, "example.com/pkg.(*T).Method", []string{"a", ""}, func() any { return new([]string) }},
		{"structs", 42, "geo.norm", []point{{1.5, -2, "a"}, {0, 0, ""}}, func() any { return new([]point) }},
		{"nil args", 7, "g", nil, func() any { return new([]int) }},
		{"unicode name", 8, "π.estimate", [][2]int{{1, 2}}, func() any { return new([][2]int) }},
		{"bytes", 9, "h", [][]byte{[]byte("\x00\xff")}, func() any { return new([][]byte) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := NewCodec(&buf, 0)
			if n, err := c.SendRun(tt.id, tt.fn, tt.args, 0, SliceLen(tt.args), nil); err != nil || n != SliceLen(tt.args) {
				t.Fatal(n, err)
			}
			k, body, err := c.Recv()
			if err != nil || k != KindRun {
				t.Fatalf("Recv: %v %v", k, err)
			}
			dec := c.Decoder(body)
			id, fn, err := DecodeRunHeader(dec)
			if err != nil || id != tt.id || fn != tt.fn {
				t.Fatalf("DecodeRunHeader: %d %q %v; want %d %q", id, fn, err, tt.id, tt.fn)
			}
			args := tt.into()
			if err := codec.DecodeSlice(dec, args); err != nil {
				t.Fatal(err)
			}
			got := reflect.ValueOf(args).Elem().Interface()
			if tt.args == nil {
				if !reflect.ValueOf(got).IsNil() {
					t.Fatalf("args %#v, want nil", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.args) {
				t.Fatalf("args %#v, want %#v", got, tt.args)
			}
		})
	}
}

func TestResultRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		id      uint64
		rerr    *RemoteError
		results any
		into    func() any
	}{
		{"ok", 1, nil, []int{1, 4, 9}, func() any { return new([]int) }},
		{"ok, no results", 2, nil, []string{}, func() any { return new([]string) }},
		{"error", 3, &RemoteError{Kind: ErrKindError, Index: 2, Message: "boom"}, []int{1, 4, 0}, func() any { return new([]int) }},
		{"panic", 4, &RemoteError{Kind: ErrKindPanic, Index: 0, Message: "runtime error: index out of range", Stack: "goroutine 1 [running]:\nmain.f()\n"}, nil, func() any { return new([]int) }},
		{"unknown", 5, &RemoteError{Kind: ErrKindUnknown, Message: "function f is not registered"}, nil, func() any { return new([]point) }},
		{"zero RemoteError", 6, &RemoteError{}, nil, func() any { return new([]int) }},
		{"max id", 1<<64 - 1, nil, []point{{1, 2, "x"}}, func() any { return new([]point) }},
	}
	kinds := []string{ErrKindError, ErrKindPanic, ErrKindCanceled, ErrKindDeadline, ErrKindDecode, ErrKindEncode, ErrKindUnknown, ErrKindInit}
	for _, k := range kinds {
		tests = append(tests, struct {
			name    string
			id      uint64
			rerr    *RemoteError
			results any
			into    func() any
		}{"kind " + k, 100, &RemoteError{Kind: k, Index: 1, Message: k}, []int{0, 0}, func() any { return new([]int) }})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := NewCodec(&buf, 0)
			if err := c.SendFunc(KindResult, func(enc *msgpack.Encoder) error { return EncodeResult(enc, tt.id, tt.rerr, tt.results) }); err != nil {
				t.Fatal(err)
			}
			k, body, err := c.Recv()
			if err != nil || k != KindResult {
				t.Fatalf("Recv: %v %v", k, err)
			}
			dec := c.Decoder(body)
			id, rerr, err := DecodeResultHeader(dec)
			if err != nil || id != tt.id {
				t.Fatalf("DecodeResultHeader: %d %v; want %d", id, err, tt.id)
			}
			if !reflect.DeepEqual(rerr, tt.rerr) {
				t.Fatalf("RemoteError %#v, want %#v", rerr, tt.rerr)
			}
			res := tt.into()
			if err := dec.Decode(res); err != nil {
				t.Fatal(err)
			}
			got := reflect.ValueOf(res).Elem()
			if tt.results == nil {
				if !got.IsNil() {
					t.Fatalf("results %#v, want nil", got.Interface())
				}
			} else if !reflect.DeepEqual(got.Interface(), tt.results) {
				t.Fatalf("results %#v, want %#v", got.Interface(), tt.results)
			}
		})
	}
}

// TestSendRunUnencodable: arguments that cannot be encoded fail with
// ErrEncode, which the cluster tells from a transport error, and nothing is
// sent.
func TestSendRunUnencodable(t *testing.T) {
	for _, args := range []any{
		[]func(){func() {}},
		[]any{1, func(int) int { return 0 }},
		[]chan int{make(chan int)},
		[]struct{ F func() }{{}},
		[]map[string]any{{"f": func() {}}},
	} {
		var buf bytes.Buffer
		c := NewCodec(&buf, 0)
		_, err := c.SendRun(1, "main.f", args, 0, SliceLen(args), nil)
		if !errors.Is(err, ErrEncode) {
			t.Errorf("SendRun(%T): %v; want ErrEncode", args, err)
			continue
		}
		if buf.Len() != 0 {
			t.Errorf("EncodeRun(%T): %d bytes sent", args, buf.Len())
		}
		// The codec is still in step.
		if _, err := c.SendRun(2, "g", []int{5}, 0, 1, nil); err != nil {
			t.Fatal(err)
		}
		_, body, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if id, fn, err := DecodeRunHeader(c.Decoder(body)); err != nil || id != 2 || fn != "g" {
			t.Fatalf("after a failed SendRun: %d %q %v", id, fn, err)
		}
	}
}

// TestEncodeResultUnencodable: results msgpack cannot encode fail the Send
// and write nothing, so that the worker can send an encode error instead.
func TestEncodeResultUnencodable(t *testing.T) {
	var buf bytes.Buffer
	c := NewCodec(&buf, 0)
	err := c.SendFunc(KindResult, func(enc *msgpack.Encoder) error { return EncodeResult(enc, 1, nil, []chan int{nil}) })
	if err == nil || buf.Len() != 0 {
		t.Fatalf("EncodeResult of channels: %v, %d bytes", err, buf.Len())
	}
}

// TestDecodeHeadersMalformed: bodies that are not a Run or a Result give
// ErrMalformed.
func TestDecodeHeadersMalformed(t *testing.T) {
	enc := func(v ...any) []byte {
		var b bytes.Buffer
		e := msgpack.NewEncoder(&b)
		for _, x := range v {
			if err := e.Encode(x); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	arr := func(n int, v ...any) []byte {
		var b bytes.Buffer
		e := msgpack.NewEncoder(&b)
		e.EncodeArrayLen(n)
		b.Write(enc(v...))
		return b.Bytes()
	}
	tests := []struct {
		name         string
		body         []byte
		runOK, resOK bool
	}{
		{"empty", nil, false, false},
		{"nil", enc(nil), false, false},
		{"map", enc(map[string]int{"a": 1}), false, false},
		{"2-array", arr(2, 1, "f"), false, false},
		{"4-array", arr(4, 1, "f", nil, nil), false, false},
		// msgpack converts between integer types: -1 reads as 1<<64-1,
		// an unknown id.
		{"negative id", arr(3, -1, "f", nil), true, false},
		{"string id", arr(3, "1", "f", nil), false, false},
		{"float id", arr(3, 1.5, "f", nil), false, false},
		{"int func", arr(3, 1, 2, nil), false, false},
		{"truncated after id", arr(3, 1), false, false},
		{"string error", arr(3, 1, "boom", nil), true, false},
		{"int error", arr(3, 1, 5, nil), false, false},
		{"array error", arr(3, 1, nil, nil)[:2], false, false},
		{"valid Run", arr(3, 1, "f", []int{1}), true, false},
		// msgpack reads nil as "": a Run of the function "", which no
		// worker has.
		{"valid Result", arr(3, 1, nil, []int{1}), true, true},
		{"Result with error", arr(3, 1, map[string]any{"Kind": "panic", "Message": "x"}, nil), false, true},
		// The headers do not look at the third element; the caller's
		// decode of it fails instead.
		{"Run without args", arr(3, 1, "f"), true, false},
	}
	c := NewCodec(rw{bytes.NewReader(nil), io.Discard}, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeRunHeader(c.Decoder(tt.body))
			if (err == nil) != tt.runOK || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Errorf("DecodeRunHeader: %v; want ok=%v", err, tt.runOK)
			}
			_, _, err = DecodeResultHeader(c.Decoder(tt.body))
			if (err == nil) != tt.resOK || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Errorf("DecodeResultHeader: %v; want ok=%v", err, tt.resOK)
			}
		})
	}
}

// Items that do not fit in one frame: SendRun sends as many as fit and
// says how many; SendResult sends ResultParts, then the Result, and the
// parts decode, appended, into the whole.
func TestItemsSplitByBytes(t *testing.T) {
	const max = 4096
	var buf bytes.Buffer
	c := NewCodec(&buf, max)
	items := make([]string, 10)
	for i := range items {
		items[i] = strings.Repeat(string(rune('a'+i)), 1000)
	}
	var got []string
	for from := 0; from < len(items); {
		n, err := c.SendRun(uint64(from), "f", items, from, len(items), nil)
		if err != nil || n < 1 {
			t.Fatalf("SendRun from %d: %d, %v", from, n, err)
		}
		k, body, err := c.Recv()
		if err != nil || k != KindRun || len(body) > max {
			t.Fatalf("Recv: %v, %d bytes, %v", k, len(body), err)
		}
		dec := c.Decoder(body)
		if _, _, err := DecodeRunHeader(dec); err != nil {
			t.Fatal(err)
		}
		if err := codec.DecodeSlice(dec, &got); err != nil {
			t.Fatal(err)
		}
		from += n
	}
	if !reflect.DeepEqual(got, items) {
		t.Fatalf("the Runs carried %d items, want the 10 sent", len(got))
	}
	rerr := &RemoteError{Kind: ErrKindError, Index: 9, Message: "last"}
	if err := c.SendResult(7, rerr, items); err != nil {
		t.Fatal(err)
	}
	var res []string
	for {
		k, body, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		dec := c.Decoder(body)
		id, e, err := DecodeResultHeader(dec)
		if err != nil || id != 7 {
			t.Fatalf("%v: id %d, %v", k, id, err)
		}
		if err := codec.DecodeSlice(dec, &res); err != nil {
			t.Fatal(err)
		}
		if k == KindResult {
			if e == nil || e.Index != 9 {
				t.Fatalf("Result's error: %+v", e)
			}
			break
		}
		if k != KindResultPart {
			t.Fatalf("got %v", k)
		}
	}
	if !reflect.DeepEqual(res, items) {
		t.Fatalf("the parts carried %d items, want the 10 sent", len(res))
	}
	// Nil and empty results are one Result each, kept apart.
	for _, r := range []any{nil, []string{}} {
		if err := c.SendResult(8, nil, r); err != nil {
			t.Fatal(err)
		}
		k, body, err := c.Recv()
		if err != nil || k != KindResult {
			t.Fatalf("%v %v", k, err)
		}
		dec := c.Decoder(body)
		DecodeResultHeader(dec)
		var out []string
		if err := codec.DecodeSlice(dec, &out); err != nil || (r == nil) != (out == nil) {
			t.Fatalf("results %#v came back as %#v (%v)", r, out, err)
		}
	}
}
