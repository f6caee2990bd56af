package cluster

import (
	"bytes"
	"io"
	"os"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/yamux"
)

// lineWriter writes each complete line given to it to w in one Write,
// prefixed with prefix; a last line without a newline is written by Close.
// It is safe for concurrent use.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *lineWriter) setPrefix(p string) {
	l.mu.Lock()
	l.prefix = p
	l.mu.Unlock()
}

func (l *lineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.buf = append(l.buf, b...)
			if len(l.buf) > 64<<10 { // no newline for long: flush as a line
				l.flushLocked()
			}
			break
		}
		l.buf = append(l.buf, b[:i]...)
		l.flushLocked()
		b = b[i+1:]
	}
	return n, nil
}

func (l *lineWriter) flushLocked() {
	line := make([]byte, 0, len(l.prefix)+len(l.buf)+1)
	line = append(append(append(line, l.prefix...), l.buf...), '\n')
	l.w.Write(line)
	l.buf = l.buf[:0]
}

// Close writes what is left of a last line.
func (l *lineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.flushLocked()
	}
	return nil
}

// relayOutput accepts the output streams a worker process opens on sess
// (see forwardOutput) and writes their lines to the driver's stderr,
// prefixed with the worker's name, until the session ends.
func (w *wconn) relayOutput() {
	defer w.p.wg.Done()
	for {
		s, err := w.sess.Accept()
		if err != nil {
			return
		}
		lw := &lineWriter{w: os.Stderr, prefix: "[" + w.name + "] "}
		io.Copy(lw, s)
		lw.Close()
		s.Close()
	}
}

// forwardOutput sends this worker process's stdout and stderr to the driver
// over a stream of sess, and still to the original stderr (a poolworker's
// log), until the returned stop is called. Fatal errors (an unrecovered
// panic in a goroutine of the user's, say) go to the original stderr: the
// process dies before it could forward them, and the driver sees the
// connection lost.
func forwardOutput(sess *yamux.Session) (stop func()) {
	r, restore, orig, err := redirectOutput()
	if err != nil {
		return func() {}
	}
	debug.SetCrashOutput(orig, debug.CrashOptions{})
	stream, err := sess.Open()
	if err != nil {
		stream = nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				orig.Write(buf[:n])
				if stream != nil {
					if _, err := stream.Write(buf[:n]); err != nil {
						stream = nil
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return func() {
		restore() // closes the pipe's last writers: the copy ends
		<-done
		r.Close()
		if stream != nil {
			stream.Close()
		}
	}
}
