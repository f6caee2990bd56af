// Package token checks and makes the shared tokens that authenticate mp's
// drivers and poolworkers to each other.
//
// A token's strength is estimated from its length and the smallest of these
// alphabets that holds all its characters: decimal digits (3.3 bits a
// character), hexadecimal digits (4 bits), base64 or base64url with padding
// (6 bits); any other character counts as 6 bits too. So 128 bits is at
// least 32 hex digits or 22 base64 characters. The estimate is an upper
// bound: it cannot see that "aaaa…" is weak; tokens must come from a random
// source, as [New]'s do.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
)

// MinBits is the least estimated strength, in bits, of a token used off
// loopback. A driver sends a proof keyed with the token to whatever it
// dials (and a listening driver to whoever connects), which can be guessed
// offline at millions of tries a second: 128 bits put that out of reach.
const MinBits = 128

// NewBits is the strength of the tokens New makes.
const NewBits = 256

// HowToMake tells a user how to make a token.
const HowToMake = "make one with `poolworker -new-token` (or `head -c 32 /dev/urandom | base64`)"

// New returns a token of NewBits random bits from crypto/rand, as
// unpadded base64url (43 characters).
func New() string {
	b := make([]byte, NewBits/8)
	rand.Read(b) // never fails (crypto/rand, Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Bits estimates the strength of tok in bits (see the package doc).
func Bits(tok string) float64 {
	if tok == "" {
		return 0
	}
	perChar := 6.0
	switch {
	case strings.Trim(tok, "0123456789") == "":
		perChar = math.Log2(10)
	case strings.Trim(tok, "0123456789abcdefABCDEF") == "":
		perChar = 4
	}
	return float64(len(tok)) * perChar
}

// ErrWeak is wrapped by Check's errors.
var ErrWeak = errors.New("token too weak")

// Check returns an error wrapping ErrWeak if tok is estimated under
// MinBits. what names where the token came from (e.g. "MP_TOKEN or
// cluster.Token") and where names the address it is used on; both are in
// the message, with how to make a good token.
func Check(tok, what, where string) error {
	if b := Bits(tok); b < MinBits {
		if tok == "" {
			return fmt.Errorf("%w: no token (%s) is set for %s, which is not loopback: %s", ErrWeak, what, where, HowToMake)
		}
		return fmt.Errorf("%w: the token (%s) has about %.0f bits, and %s is not loopback, where at least %d are needed "+
			"(32 hex digits or 22 base64 characters of random): %s", ErrWeak, what, b, where, MinBits, HowToMake)
	}
	return nil
}

// IsLoopback reports whether addr, an address actually bound or connected
// to (a listener's Addr, a connection's RemoteAddr), is a loopback address.
// It never resolves a name: a name counts as not loopback.
func IsLoopback(addr net.Addr) bool {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	case *net.UnixAddr:
		return true
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return false
		}
		ip = net.ParseIP(host)
	}
	return ip != nil && ip.IsLoopback()
}
