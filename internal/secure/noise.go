// Package secure is mp's encrypted channel: the Noise handshake
// Noise_NNpsk0_25519_AESGCM_SHA256 (noiseprotocol.org, revision 34) written
// on the standard library, and [Conn], a net.Conn that seals what it writes
// into authenticated records and opens what it reads.
//
// Package wire drives the handshake (its records, versions and errors are in
// wire's spec.md); this package holds only the cryptography, so that it can
// be checked against the Noise specification on its own.
package secure

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
)

// Protocol is the Noise protocol name this package implements.
const Protocol = "Noise_NNpsk0_25519_AESGCM_SHA256"

const (
	// KeyLen is the size of a cipher key and of the pre-shared key.
	KeyLen = 32
	// TagLen is the size of an authentication tag.
	TagLen = 16
	// dhLen is the size of an X25519 public key.
	dhLen = 32
	// MaxMessage is the largest Noise message.
	MaxMessage = math.MaxUint16
)

// ErrDecrypt means a handshake message or a record failed authentication:
// the peer holds another key, or the bytes were changed on the way.
var ErrDecrypt = errors.New("secure: message failed authentication")

// Keys are one direction's cipher state: its AES-256-GCM key and the nonce
// of its next message.
type Keys struct {
	Key   [KeyLen]byte
	Nonce uint64
}

// cipherState is Noise's CipherState for AESGCM.
type cipherState struct {
	aead cipher.AEAD
	n    uint64
}

func newAEAD(k []byte) cipher.AEAD {
	b, err := aes.NewCipher(k)
	if err != nil {
		panic(err) // k is always 32 bytes
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

// nonce writes Noise's AESGCM nonce for n: 4 zero bytes, then n as a
// big-endian u64.
func nonce(b *[12]byte, n uint64) []byte {
	binary.BigEndian.PutUint64(b[4:], n)
	return b[:]
}

func (c *cipherState) encrypt(out, ad, plaintext []byte) []byte {
	if c.aead == nil {
		return append(out, plaintext...)
	}
	var nb [12]byte
	out = c.aead.Seal(out, nonce(&nb, c.n), plaintext, ad)
	c.n++
	return out
}

func (c *cipherState) decrypt(ad, ciphertext []byte) ([]byte, error) {
	if c.aead == nil {
		return ciphertext, nil
	}
	var nb [12]byte
	p, err := c.aead.Open(nil, nonce(&nb, c.n), ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	c.n++
	return p, nil
}

// symmetricState is Noise's SymmetricState with SHA-256.
type symmetricState struct {
	ck, h [sha256.Size]byte
	cs    cipherState
}

func (s *symmetricState) init(prologue []byte) {
	copy(s.h[:], Protocol) // exactly 32 bytes: used as h, unhashed
	s.ck = s.h
	s.mixHash(prologue)
}

// hkdf is Noise's HKDF(ck, ikm, n): RFC 5869 with ck as the salt and no
// info, n outputs of 32 bytes.
func (s *symmetricState) hkdf(ikm []byte, n int) []byte {
	out, err := hkdf.Key(sha256.New, ikm, s.ck[:], "", n*sha256.Size)
	if err != nil {
		panic(err)
	}
	return out
}

func (s *symmetricState) mixHash(data []byte) {
	h := sha256.New()
	h.Write(s.h[:])
	h.Write(data)
	h.Sum(s.h[:0])
}

func (s *symmetricState) mixKey(ikm []byte) {
	out := s.hkdf(ikm, 2)
	copy(s.ck[:], out)
	s.cs = cipherState{aead: newAEAD(out[32:64])}
}

func (s *symmetricState) mixKeyAndHash(ikm []byte) {
	out := s.hkdf(ikm, 3)
	copy(s.ck[:], out)
	s.mixHash(out[32:64])
	s.cs = cipherState{aead: newAEAD(out[64:96])}
}

func (s *symmetricState) encryptAndHash(out, plaintext []byte) []byte {
	start := len(out)
	out = s.cs.encrypt(out, s.h[:], plaintext)
	s.mixHash(out[start:])
	return out
}

func (s *symmetricState) decryptAndHash(ciphertext []byte) ([]byte, error) {
	p, err := s.cs.decrypt(s.h[:], ciphertext)
	if err != nil {
		return nil, err
	}
	s.mixHash(ciphertext)
	return p, nil
}

func (s *symmetricState) split() (Keys, Keys) {
	out := s.hkdf(nil, 2)
	var a, b Keys
	copy(a.Key[:], out[:32])
	copy(b.Key[:], out[32:64])
	return a, b
}

// Handshake is one side of a Noise_NNpsk0 handshake:
//
//	-> psk, e
//	<- e, ee
//
// The initiator (mp's driver) writes message 1 and reads message 2; the
// responder (the worker) reads message 1 and writes message 2. A Handshake
// is used once, by one goroutine. Its cost is two X25519 operations per
// side and a few SHA-256 blocks: about 100 µs.
type Handshake struct {
	sym       symmetricState
	psk       [KeyLen]byte
	e         *ecdh.PrivateKey
	re        *ecdh.PublicKey
	initiator bool
	step      int
}

// NewHandshake starts a handshake with the pre-shared key psk and the
// prologue both sides must agree on. e is the ephemeral key; nil makes a
// fresh one from crypto/rand (tests pass fixed keys to check vectors).
func NewHandshake(initiator bool, psk [KeyLen]byte, prologue []byte, e *ecdh.PrivateKey) *Handshake {
	if e == nil {
		var err error
		if e, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			panic("secure: crypto/rand failed: " + err.Error())
		}
	}
	hs := &Handshake{psk: psk, e: e, initiator: initiator}
	hs.sym.init(prologue)
	return hs
}

var errOrder = errors.New("secure: handshake message out of order")

// WriteMessage1 appends message 1 (the initiator's, with payload) to out.
func (hs *Handshake) WriteMessage1(out, payload []byte) ([]byte, error) {
	if !hs.initiator || hs.step != 0 {
		return nil, errOrder
	}
	hs.step++
	hs.sym.mixKeyAndHash(hs.psk[:])
	pub := hs.e.PublicKey().Bytes()
	out = append(out, pub...)
	hs.sym.mixHash(pub)
	hs.sym.mixKey(pub)
	return hs.sym.encryptAndHash(out, payload), nil
}

// ReadMessage1 processes message 1 (on the responder) and returns its
// payload. ErrDecrypt means the initiator holds another pre-shared key or
// another prologue.
func (hs *Handshake) ReadMessage1(msg []byte) ([]byte, error) {
	if hs.initiator || hs.step != 0 {
		return nil, errOrder
	}
	hs.step++
	if len(msg) < dhLen+TagLen {
		return nil, ErrDecrypt
	}
	hs.sym.mixKeyAndHash(hs.psk[:])
	re, err := ecdh.X25519().NewPublicKey(msg[:dhLen])
	if err != nil {
		return nil, ErrDecrypt
	}
	hs.re = re
	hs.sym.mixHash(msg[:dhLen])
	hs.sym.mixKey(msg[:dhLen])
	return hs.sym.decryptAndHash(msg[dhLen:])
}

// WriteMessage2 appends message 2 (the responder's) to out. Its payload is
// what payload returns when given the handshake hash at that point (after
// e and ee, before the payload): a signature over it binds the payload to
// this session. It returns the responder's keys: send (responder to
// initiator) and receive.
func (hs *Handshake) WriteMessage2(out []byte, payload func(h []byte) ([]byte, error)) (msg []byte, send, recv Keys, err error) {
	if hs.initiator || hs.step != 1 {
		return nil, send, recv, errOrder
	}
	hs.step++
	pub := hs.e.PublicKey().Bytes()
	out = append(out, pub...)
	hs.sym.mixHash(pub)
	hs.sym.mixKey(pub)
	dh, err := hs.e.ECDH(hs.re)
	if err != nil {
		return nil, send, recv, ErrDecrypt // a low-order point
	}
	hs.sym.mixKey(dh)
	var p []byte
	if payload != nil {
		if p, err = payload(hs.sym.h[:]); err != nil {
			return nil, send, recv, err
		}
	}
	out = hs.sym.encryptAndHash(out, p)
	i2r, r2i := hs.sym.split()
	return out, r2i, i2r, nil
}

// ReadMessage2 processes message 2 (on the initiator). It returns the
// payload, the handshake hash the payload was bound to (see WriteMessage2),
// and the initiator's keys: send (initiator to responder) and receive.
func (hs *Handshake) ReadMessage2(msg []byte) (payload, h []byte, send, recv Keys, err error) {
	if !hs.initiator || hs.step != 1 {
		return nil, nil, send, recv, errOrder
	}
	hs.step++
	if len(msg) < dhLen+TagLen {
		return nil, nil, send, recv, ErrDecrypt
	}
	re, err := ecdh.X25519().NewPublicKey(msg[:dhLen])
	if err != nil {
		return nil, nil, send, recv, ErrDecrypt
	}
	hs.sym.mixHash(msg[:dhLen])
	hs.sym.mixKey(msg[:dhLen])
	dh, err := hs.e.ECDH(re)
	if err != nil {
		return nil, nil, send, recv, ErrDecrypt
	}
	hs.sym.mixKey(dh)
	h = append([]byte(nil), hs.sym.h[:]...)
	payload, err = hs.sym.decryptAndHash(msg[dhLen:])
	if err != nil {
		return nil, nil, send, recv, err
	}
	i2r, r2i := hs.sym.split()
	return payload, h, i2r, r2i, nil
}

// Hash returns the handshake hash: after both messages, Noise's
// GetHandshakeHash, a value both sides share and no other session has.
func (hs *Handshake) Hash() []byte { return append([]byte(nil), hs.sym.h[:]...) }

// PSK derives the 32-byte pre-shared key from a token of any length:
// HKDF-SHA256 with the token as the secret, no salt, and info as the label.
func PSK(token []byte, info string) [KeyLen]byte {
	out, err := hkdf.Key(sha256.New, token, nil, info, KeyLen)
	if err != nil {
		panic(err)
	}
	var k [KeyLen]byte
	copy(k[:], out)
	return k
}
