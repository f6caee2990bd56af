package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/. Run a fuzzer with
//
//	go test -run='^$' -fuzz='^FuzzFrame$' -fuzztime=20s ./internal/wire/

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzFrame reads arbitrary bytes as frames, with a small limit: Recv must
// not panic, must return only valid kinds and bodies under the limit, must
// fail with one of its documented errors, and an unbuffered Codec must not
// read past the frame it returns.
func FuzzFrame(f *testing.F) {
	f.Add(frame(KindCancel, []byte{0x81, 0xa2, 'I', 'D', 0x05}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0x80, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 64
		for _, unbuffered := range []bool{false, true} {
			cr := &countingReader{r: bytes.NewReader(data)}
			var c *Codec
			if unbuffered {
				c = NewUnbufferedCodec(rw{cr, io.Discard}, max)
			} else {
				c = NewCodec(rw{cr, io.Discard}, max)
			}
			off := 0
		frames:
			for {
				k, body, err := c.Recv()
				if err != nil {
					switch {
					case err == io.EOF:
						if off != len(data) {
							t.Fatalf("io.EOF at %d of %d bytes", off, len(data))
						}
					case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrMalformed), errors.Is(err, ErrFrameTooLarge):
					default:
						t.Fatalf("Recv: unexpected error %v", err)
					}
					break frames
				}
				if k < 1 || k > maxKind {
					t.Fatalf("Recv returned kind %d", k)
				}
				if len(body) >= max {
					t.Fatalf("Recv returned a body of %d bytes, limit %d", len(body), max)
				}
				// The frame is exactly the bytes read, and re-encodes to them.
				var out bytes.Buffer
				if err := NewCodec(&out, max).SendRaw(k, body); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), data[off:off+out.Len()]) {
					t.Fatalf("frame at %d: read % x, re-encoded % x", off, data[off:off+out.Len()], out.Bytes())
				}
				off += out.Len()
				if unbuffered && cr.n != off {
					t.Fatalf("unbuffered Codec read %d bytes for frames of %d", cr.n, off)
				}
			}
		}
	})
}

// FuzzMessages decodes arbitrary bodies as every message: nothing may panic,
// and every failure wraps ErrMalformed.
func FuzzMessages(f *testing.F) {
	f.Add([]byte{0x93, 0x01, 0xa1, 'f', 0x91, 0x02})
	f.Add([]byte{0x93, 0x01, 0xc0, 0xc0})
	f.Fuzz(fuzzMessages)
}

func fuzzMessages(t *testing.T, body []byte) {
	c := NewCodec(rw{bytes.NewReader(nil), io.Discard}, 0)
	malformed := func(what string, err error) {
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: %v does not wrap ErrMalformed", what, err)
		}
	}

	// The messages and the headers of Run and Result, from any body.
	for _, v := range []any{
		new(Setup), new(SetupReply), new(Ready), new(Config),
		new(Cancel), new(Retire), new(ErrorMsg), new(RemoteError),
	} {
		malformed("Decode", c.Decode(body, v))
	}
	_, _, err := DecodeRunHeader(c.Decoder(body))
	malformed("DecodeRunHeader", err)
	_, rerr, err := DecodeResultHeader(c.Decoder(body))
	malformed("DecodeResultHeader", err)
	if err == nil && rerr != nil {
		_ = rerr.Kind + rerr.Message + rerr.Stack
	}

	// checkBody reads values exactly as msgpack does: where msgpack
	// skips a value, scanValue ends it at the same byte, unless it is
	// too deep; and what scanValue passes, msgpack can skip. (Not on
	// 32-bit platforms, where msgpack reads a length of 2³¹ or more as
	// negative, and skips nothing; checkBody refuses those.)
	r := bytes.NewReader(body)
	serr := msgpack.NewDecoder(r).Skip()
	end, err := scanValue(body)
	switch {
	case err == errTooDeep, strconv.IntSize == 32:
	case serr == nil && err != nil:
		t.Fatalf("msgpack Skip read %d bytes; scanValue: %v", len(body)-r.Len(), err)
	case serr != nil && err == nil:
		t.Fatalf("msgpack Skip: %v; scanValue ended at %d", serr, end)
	case err == nil && end != len(body)-r.Len():
		t.Fatalf("msgpack Skip read %d bytes; scanValue %d", len(body)-r.Len(), end)
	}

	// The arguments and results, of the user's types, as the worker
	// and the driver decode them: only from bodies Recv lets through,
	// since msgpack v5.4.1 preallocates whatever length a header
	// claims (msgpack#401).
	if checkBody(body) != nil {
		return
	}
	malformed("Decode", c.Decode(body, new(any)))
	dec := c.Decoder(body)
	if _, _, err := DecodeRunHeader(dec); err == nil {
		var args any
		dec.Decode(&args)
	}
	dec = c.Decoder(body)
	if _, _, err := DecodeRunHeader(dec); err == nil {
		var ints []int
		dec.Decode(&ints)
	}
	dec = c.Decoder(body)
	if _, _, err := DecodeResultHeader(dec); err == nil {
		var results []point
		dec.Decode(&results)
	}
}

// FuzzHandshake plays a peer that sends arbitrary bytes, then hangs up, to
// both sides of the handshake, with a fresh random token. Neither side may
// panic, hang, or succeed: the bytes cannot hold a Noise message made with a
// token they were chosen without. The seeds are well-formed records, so the
// fuzzer starts inside the Noise messages and the certificate proofs.
func FuzzHandshake(f *testing.F) {
	hello := make([]byte, helloLen)
	putHeader(hello, statusOK)
	f.Add(hello)
	f.Add(append(hello[:len(hello):len(hello)], message(statusOK, make([]byte, 48))...))
	f.Add(message(statusOK, make([]byte, 48)))
	f.Add(v1record(1, 0, nil, make([]byte, 32)))
	f.Fuzz(func(t *testing.T, data []byte) {
		token := make([]byte, 32)
		rand.Read(token)
		const timeout = 5 * time.Second // only a hang reaches it
		sides := []struct {
			name string
			run  func(net.Conn) error
		}{
			{"driver", func(c net.Conn) error { _, err := DriverHandshake(c, Auth{Token: token}, timeout); return err }},
			{"worker", func(c net.Conn) error { _, err := WorkerHandshake(c, Auth{Token: token}, timeout); return err }},
		}
		for _, s := range sides {
			local, peer := net.Pipe()
			go io.Copy(io.Discard, peer)
			go func() {
				peer.Write(data)
				peer.Close()
			}()
			err := s.run(local)
			local.Close()
			if err == nil {
				t.Fatalf("%s: handshake succeeded on % x", s.name, data)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%s: hung until its timeout: %v", s.name, err)
			}
		}
	})
}

// FuzzCertProof feeds arbitrary certificate proofs to the check a peer's
// proof goes through: it must fail without panicking (no CA signed them).
func FuzzCertProof(f *testing.F) {
	f.Add([]byte{1, 0, 3, 1, 2, 3, 0, 1, 9})
	f.Add([]byte{0})
	f.Add([]byte{9, 0, 0})
	f.Fuzz(func(t *testing.T, proof []byte) {
		if err := verifyProof(proof, labelDriver, make([]byte, 32), x509.NewCertPool(), x509.ExtKeyUsageClientAuth); err == nil {
			t.Fatalf("proof % x accepted", proof)
		}
	})
}
