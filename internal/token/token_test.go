package token_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/mpgo/mp/internal/token"
)

// The tokens of the attacks in issue 11 ("s3cret", "a") are refused off
// loopback, with a message that says how to make a good one; 128 bits of
// hex or base64 pass, and New makes 256 bits.
func TestCheck(t *testing.T) {
	tests := []struct {
		tok  string
		weak bool
	}{
		{"", true},
		{"a", true},
		{"s3cret", true},
		{"0123456789abcdef0123456789abcde", true},          // 31 hex digits: 124 bits
		{"0123456789abcdef0123456789abcdef", false},        // 32 hex digits
		{"12345678901234567890123456789012345678", true},   // 38 decimal digits: 126 bits
		{"123456789012345678901234567890123456789", false}, // 39: 129.6 bits
		{"ABCDEFGHIJKLMNOPQRSTU", true},                    // 21 base64 characters: 126 bits
		{"ABCDEFGHIJKLMNOPQRSTUV", false},                  // 22
		{token.New(), false},
	}
	for _, tt := range tests {
		err := token.Check(tt.tok, "MP_TOKEN", "10.0.0.1:7450")
		if tt.weak != (err != nil) {
			t.Errorf("Check(%q) = %v, want weak=%v", tt.tok, err, tt.weak)
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, token.ErrWeak) {
			t.Errorf("Check(%q) = %v, want ErrWeak", tt.tok, err)
		}
		for _, w := range []string{"MP_TOKEN", "10.0.0.1:7450", "-new-token"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Check(%q) = %q, does not mention %s", tt.tok, err, w)
			}
		}
	}
	if n := len(token.New()); n != 43 {
		t.Errorf("New() has %d characters, want 43 (256 bits of base64url)", n)
	}
	if a, b := token.New(), token.New(); a == b {
		t.Error("New() returned the same token twice")
	}
}

// Loopback is decided by the address, never by a name.
func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 9, 9, 9), Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 1}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 1}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 1}, false},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, false},
		{&net.UnixAddr{Name: "/run/x", Net: "unix"}, true},
		{stringAddr("localhost:7450"), false},
		{stringAddr("127.0.0.1:7450"), true},
	}
	for _, tt := range tests {
		if got := token.IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
