// Package tail keeps the last lines a process wrote, for error messages
// about a process that ended too soon.
package tail

import (
	"bytes"
	"strings"
	"sync"
)

// A Buffer is an io.Writer that keeps the last Max bytes written to it
// (4 KiB if Max is 0). It is safe for concurrent use. Writing costs a copy
// of what is written; the memory it holds stays under 2×Max.
type Buffer struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

// Write keeps the end of p. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	max := b.Max
	if max <= 0 {
		max = 4 << 10
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-max:]...)
	}
	return len(p), nil
}

// Lines returns at most n of the last lines written, without a partial
// first line if the buffer cut one, each prefixed with indent.
func (b *Buffer) Lines(n int, indent string) string {
	b.mu.Lock()
	s := bytes.TrimRight(b.buf, "\n")
	cut := len(b.buf) > 0 && b.Max > 0 && len(b.buf) >= b.Max
	b.mu.Unlock()
	lines := strings.Split(string(s), "\n")
	if cut && len(lines) > 1 {
		lines = lines[1:]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return indent + strings.Join(lines, "\n"+indent)
}

// Report returns the last ten lines for the end of an error message:
// "; its last output:" and the lines, indented by a tab, or "; it wrote
// nothing".
func (b *Buffer) Report() string {
	if l := b.Lines(10, "\t"); l != "" {
		return "; its last output:\n" + l
	}
	return "; it wrote nothing"
}
