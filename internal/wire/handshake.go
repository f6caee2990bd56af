// Package wire is mp's cluster protocol: the authenticated handshake, the
// frames and the messages that cross a connection between a driver (the
// program that owns a cluster pool) and a worker (a worker process or a
// poolworker daemon). spec.md beside this file describes it byte by byte.
//
// Nothing a peer sends is decoded as msgpack before that peer has proved it
// holds the shared token: the handshake uses fixed-size binary records.
package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Version is the protocol version. Peers with different versions refuse to
// talk, with ErrVersion.
const Version = 1

const (
	magic    = "MPGO"
	nonceLen = 32
	macLen   = sha256.Size
	// helloLen is magic, version, status, nonce.
	helloLen = 4 + 2 + 2 + nonceLen
	// proofLen is hello plus a MAC.
	proofLen = helloLen + macLen
)

// Handshake status codes, sent by the worker in its proof.
const (
	statusOK      = 0
	statusAuth    = 1
	statusVersion = 2
)

var (
	// ErrAuth means the peer does not hold the same token.
	ErrAuth = errors.New("mp: authentication failed: the token does not match the peer's (check MP_TOKEN)")
	// ErrVersion means the peer speaks another protocol version.
	ErrVersion = errors.New("mp: protocol version mismatch")
	// ErrNotMP means the peer does not speak mp's protocol at all.
	ErrNotMP = errors.New("mp: peer does not speak the mp protocol")
)

// DefaultHandshakeTimeout bounds a handshake.
const DefaultHandshakeTimeout = 10 * time.Second

func mac(token []byte, label string, a, b []byte) []byte {
	h := hmac.New(sha256.New, token)
	h.Write([]byte(label))
	h.Write(a)
	h.Write(b)
	return h.Sum(nil)
}

func putHeader(b []byte, status uint16, nonce []byte) {
	copy(b, magic)
	binary.BigEndian.PutUint16(b[4:], Version)
	binary.BigEndian.PutUint16(b[6:], status)
	copy(b[8:8+nonceLen], nonce)
}

// parseHeader checks a record's magic and version.
func parseHeader(b []byte) (status uint16, nonce []byte, err error) {
	if string(b[:4]) != magic {
		return 0, nil, ErrNotMP
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return 0, nil, fmt.Errorf("%w: peer speaks version %d, this program %d; run the same mp version on both ends", ErrVersion, v, Version)
	}
	return binary.BigEndian.Uint16(b[6:]), b[8 : 8+nonceLen], nil
}

func newNonce() []byte {
	n := make([]byte, nonceLen)
	if _, err := rand.Read(n); err != nil {
		panic("mp: crypto/rand failed: " + err.Error())
	}
	return n
}

// DriverHandshake authenticates conn from the driver's side: the driver
// proves first that it holds token, then checks the worker's proof. The
// token never crosses the wire; each side sends an HMAC-SHA256 of fresh
// nonces. It sets and clears a deadline of timeout on conn.
func DriverHandshake(conn net.Conn, token []byte, timeout time.Duration) error {
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	hello := make([]byte, helloLen)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return fmt.Errorf("mp: handshake: reading worker hello: %w", err)
	}
	_, nonceW, err := parseHeader(hello)
	if err != nil {
		// Tell the worker why, as far as it can read it.
		rec := make([]byte, proofLen)
		putHeader(rec, statusVersion, nil)
		if errors.Is(err, ErrVersion) {
			conn.Write(rec)
		}
		return err
	}
	nonceD := newNonce()
	proof := make([]byte, proofLen)
	putHeader(proof, statusOK, nonceD)
	copy(proof[helloLen:], mac(token, "mp driver proof", nonceW, nonceD))
	if _, err := conn.Write(proof); err != nil {
		return fmt.Errorf("mp: handshake: %w", err)
	}
	reply := make([]byte, proofLen)
	if _, err := io.ReadFull(conn, reply); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w (the worker closed the connection)", ErrAuth)
		}
		return fmt.Errorf("mp: handshake: reading worker proof: %w", err)
	}
	status, _, err := parseHeader(reply)
	if err != nil {
		return err
	}
	switch status {
	case statusOK:
	case statusAuth:
		return fmt.Errorf("%w (the worker rejected the driver's proof)", ErrAuth)
	case statusVersion:
		return ErrVersion
	default:
		return fmt.Errorf("%w: unknown handshake status %d", ErrNotMP, status)
	}
	if !hmac.Equal(reply[helloLen:], mac(token, "mp worker proof", nonceD, nonceW)) {
		return fmt.Errorf("%w (the worker could not prove the token)", ErrAuth)
	}
	return nil
}

// WorkerHandshake authenticates conn from the worker's side: it sends a
// fresh nonce, checks the driver's proof, and answers with its own. On a
// wrong proof it tells the driver so and returns ErrAuth; the caller should
// close conn. It reads exactly one fixed-size record from the peer.
func WorkerHandshake(conn net.Conn, token []byte, timeout time.Duration) error {
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	nonceW := newNonce()
	hello := make([]byte, helloLen)
	putHeader(hello, statusOK, nonceW)
	if _, err := conn.Write(hello); err != nil {
		return fmt.Errorf("mp: handshake: %w", err)
	}
	proof := make([]byte, proofLen)
	if _, err := io.ReadFull(conn, proof); err != nil {
		return fmt.Errorf("mp: handshake: reading driver proof: %w", err)
	}
	status, nonceD, err := parseHeader(proof)
	reply := make([]byte, proofLen)
	switch {
	case errors.Is(err, ErrVersion):
		putHeader(reply, statusVersion, nil)
		conn.Write(reply)
		return err
	case err != nil:
		return err
	case status != statusOK:
		return fmt.Errorf("%w: the driver refused the worker (status %d)", ErrVersion, status)
	}
	nonceD = bytes.Clone(nonceD)
	if !hmac.Equal(proof[helloLen:], mac(token, "mp driver proof", nonceW, nonceD)) {
		putHeader(reply, statusAuth, nil)
		conn.Write(reply)
		return fmt.Errorf("%w (the driver could not prove the token)", ErrAuth)
	}
	putHeader(reply, statusOK, nil)
	copy(reply[helloLen:], mac(token, "mp worker proof", nonceD, nonceW))
	if _, err := conn.Write(reply); err != nil {
		return fmt.Errorf("mp: handshake: %w", err)
	}
	return nil
}
