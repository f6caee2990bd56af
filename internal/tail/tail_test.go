package tail_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mpgo/mp/internal/tail"
)

func TestLines(t *testing.T) {
	var b tail.Buffer
	if got := b.Lines(3, "> "); got != "" {
		t.Errorf("empty buffer: %q", got)
	}
	for i := range 10 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if got, want := b.Lines(3, "> "), "> line 7\n> line 8\n> line 9"; got != want {
		t.Errorf("Lines(3) = %q, want %q", got, want)
	}
}

func TestKeepsTheEnd(t *testing.T) {
	b := tail.Buffer{Max: 64}
	for i := range 1000 {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", 10))
	}
	got := b.Lines(100, "")
	if !strings.HasSuffix(got, "line 999 xxxxxxxxxx") || strings.Contains(got, "line 990") {
		t.Errorf("Lines = %q", got)
	}
	if strings.HasPrefix(got, "ine") || strings.HasPrefix(got, "x") {
		t.Errorf("a partial first line was kept: %q", got)
	}
}
