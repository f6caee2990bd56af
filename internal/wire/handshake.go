// Package wire is mp's cluster protocol: the authenticated handshake, the
// frames and the messages that cross a connection between a driver (the
// program that owns a cluster pool) and a worker (a worker process or a
// poolworker daemon). spec.md beside this file describes it byte by byte.
//
// Nothing a peer sends is decoded as msgpack before that peer has proved it
// holds the shared token: the handshake uses small binary records and a
// Noise handshake (package internal/secure), and everything after it
// crosses in records only the two ends can open.
package wire

import (
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/mpgo/mp/internal/secure"
)

// Version is the protocol version. Peers with different versions refuse to
// talk, with ErrVersion.
const Version = 2

const (
	magic = "MPGO"
	// headerLen is magic, version, status.
	headerLen = 4 + 2 + 2
	// helloLen is the worker's hello: header, flags, 31 reserved bytes.
	helloLen = 40
	// msgHeaderLen is a message's header and its u16 length.
	msgHeaderLen = headerLen + 2
	// versionRecordLen is a version record: header and 64 zero bytes, the
	// size of a version-1 proof, so that a version-1 peer reads it whole.
	versionRecordLen = 72
	// pskInfo is the HKDF label of the pre-shared key.
	pskInfo = "mp v2 noise psk"
)

// Handshake status codes.
const (
	statusOK      = 0
	statusAuth    = 1
	statusVersion = 2
)

// Hello flags.
const (
	flagCertRequired = 0x01
	knownFlags       = flagCertRequired
)

var (
	// ErrAuth means the peer does not hold the same token (or, with
	// certificates, has none the CA signed), or the connection was
	// tampered with.
	ErrAuth = errors.New("mp: authentication failed")
	// ErrVersion means the peer speaks another protocol version.
	ErrVersion = errors.New("mp: protocol version mismatch")
	// ErrNotMP means the peer does not speak mp's protocol at all.
	ErrNotMP = errors.New("mp: peer does not speak the mp protocol")
)

// tokenMismatch is what an authentication failure of the token says; a
// failure of the certificates says what failed instead.
const tokenMismatch = "the token does not match the peer's (check MP_TOKEN)"

// DefaultHandshakeTimeout bounds a handshake.
const DefaultHandshakeTimeout = 10 * time.Second

// Auth is what a side of the handshake proves itself with, and checks the
// peer against.
type Auth struct {
	// Token is the shared secret. It may be empty (both ends must agree),
	// which protects nothing unless Cert is set.
	Token []byte
	// Cert, if set, is this side's certificate chain and private key (a
	// crypto.Signer: ECDSA, Ed25519 or RSA). The peer must then present a
	// certificate too.
	Cert *Certificate
	// CA verifies the peer's certificate; required with Cert.
	CA *x509.CertPool
}

func putHeader(b []byte, status uint16) {
	copy(b, magic)
	binary.BigEndian.PutUint16(b[4:], Version)
	binary.BigEndian.PutUint16(b[6:], status)
}

// parseHeader checks a record's magic and version.
func parseHeader(b []byte) (status uint16, err error) {
	if string(b[:4]) != magic {
		return 0, ErrNotMP
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != Version {
		return 0, versionErr(v)
	}
	return binary.BigEndian.Uint16(b[6:]), nil
}

func versionErr(peer uint16) error {
	return fmt.Errorf("%w: peer speaks version %d, this program %d; run the same mp version on both ends", ErrVersion, peer, Version)
}

func versionRecord() []byte {
	rec := make([]byte, versionRecordLen)
	putHeader(rec, statusVersion)
	return rec
}

// message returns a handshake message record around a Noise message.
func message(status uint16, noise []byte) []byte {
	b := make([]byte, msgHeaderLen, msgHeaderLen+len(noise))
	putHeader(b, status)
	binary.BigEndian.PutUint16(b[headerLen:], uint16(len(noise)))
	return append(b, noise...)
}

// readMessage reads a message record's header and its Noise message.
func readMessage(conn net.Conn) (status uint16, noise []byte, err error) {
	var hdr [msgHeaderLen]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return 0, nil, err
	}
	if status, err = parseHeader(hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint16(hdr[headerLen:])
	noise = make([]byte, n)
	if _, err := io.ReadFull(conn, noise); err != nil {
		return 0, nil, fmt.Errorf("mp: handshake: reading a message: %w", err)
	}
	return status, noise, nil
}

// DriverHandshake authenticates conn from the driver's side (spec.md,
// "Handshake and secure channel") and returns the channel on it: every
// byte written to or read from the returned Conn is sealed. The token
// never crosses the wire. It sets and clears a deadline of timeout on conn.
// On an error the caller closes conn.
func DriverHandshake(conn net.Conn, auth Auth, timeout time.Duration) (*secure.Conn, error) {
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	hello := make([]byte, helloLen)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return nil, fmt.Errorf("mp: handshake: reading worker hello: %w", err)
	}
	if _, err := parseHeader(hello); err != nil {
		if errors.Is(err, ErrVersion) {
			conn.Write(versionRecord()) // tell the worker why
		}
		return nil, err
	}
	flags := hello[headerLen]
	if flags&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: unknown hello flags %#x", ErrNotMP, flags)
	}
	certRequired := flags&flagCertRequired != 0
	if certRequired && auth.Cert == nil {
		return nil, fmt.Errorf("%w: the poolworker requires a certificate signed by its CA: set MP_TLS_CERT, MP_TLS_KEY and MP_TLS_CA (or cluster.TLS)", ErrAuth)
	}
	if !certRequired && auth.Cert != nil {
		return nil, fmt.Errorf("%w: this driver requires a certificate (MP_TLS_CA), and the poolworker has none: start it with -tls-cert, -tls-key and -tls-ca", ErrAuth)
	}
	var dhdr [headerLen]byte
	putHeader(dhdr[:], statusOK)
	hs := secure.NewHandshake(true, secure.PSK(auth.Token, pskInfo), append(hello, dhdr[:]...), nil)
	m1, err := hs.WriteMessage1(nil, nil)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(message(statusOK, m1)); err != nil {
		return nil, fmt.Errorf("mp: handshake: %w", err)
	}
	status, m2, err := readMessage(conn)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: the worker closed the connection (is the token the peer's? check MP_TOKEN)", ErrAuth)
		}
		if errors.Is(err, ErrNotMP) || errors.Is(err, ErrVersion) {
			return nil, err
		}
		return nil, fmt.Errorf("mp: handshake: reading worker message: %w", err)
	}
	switch status {
	case statusOK:
	case statusAuth:
		return nil, fmt.Errorf("%w: %s (the worker could not authenticate this driver)", ErrAuth, tokenMismatch)
	case statusVersion:
		return nil, ErrVersion
	default:
		return nil, fmt.Errorf("%w: unknown handshake status %d", ErrNotMP, status)
	}
	payload, h, send, recv, err := hs.ReadMessage2(m2)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (the worker could not prove it, or the connection was tampered with)", ErrAuth, tokenMismatch)
	}
	sc := secure.NewConn(conn, send, recv)
	if auth.Cert == nil {
		if len(payload) != 0 {
			return nil, fmt.Errorf("%w: a payload in message 2 without certificates", ErrNotMP)
		}
		return sc, nil
	}
	if err := verifyProof(payload, labelWorker, h, auth.CA, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, fmt.Errorf("%w: the poolworker's certificate: %v", ErrAuth, err)
	}
	proof, err := makeProof(auth.Cert, labelDriver, hs.Hash())
	if err != nil {
		return nil, err
	}
	if err := writeBlock(sc, proof); err != nil {
		return nil, fmt.Errorf("mp: handshake: %w", err)
	}
	verdict, err := readBlock(sc)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w (the worker closed the connection after this driver's certificate)", ErrAuth)
		}
		return nil, fmt.Errorf("mp: handshake: %w", err)
	}
	if len(verdict) != 0 {
		return nil, fmt.Errorf("%w: the poolworker refused this driver's certificate: %s", ErrAuth, verdict)
	}
	return sc, nil
}

// WorkerHandshake authenticates conn from the worker's side and returns
// the channel on it. On a wrong token it tells the driver so and returns
// ErrAuth; the caller should close conn. It reads from conn only what the
// handshake holds, so that the channel can be handed over after it.
func WorkerHandshake(conn net.Conn, auth Auth, timeout time.Duration) (*secure.Conn, error) {
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	hello := make([]byte, helloLen)
	putHeader(hello, statusOK)
	if auth.Cert != nil {
		hello[headerLen] = flagCertRequired
	}
	if _, err := conn.Write(hello); err != nil {
		return nil, fmt.Errorf("mp: handshake: %w", err)
	}
	var hdr [msgHeaderLen]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, fmt.Errorf("mp: handshake: reading the driver's message: %w", err)
	}
	if string(hdr[:4]) != magic {
		return nil, ErrNotMP
	}
	if v := binary.BigEndian.Uint16(hdr[4:]); v != Version {
		if binary.BigEndian.Uint16(hdr[6:]) != statusVersion {
			conn.Write(versionRecord())
		}
		return nil, versionErr(v)
	}
	if status := binary.BigEndian.Uint16(hdr[6:]); status != statusOK {
		return nil, fmt.Errorf("%w: the driver refused the worker (status %d)", ErrVersion, status)
	}
	m1 := make([]byte, binary.BigEndian.Uint16(hdr[headerLen:]))
	if _, err := io.ReadFull(conn, m1); err != nil {
		return nil, fmt.Errorf("mp: handshake: reading the driver's message: %w", err)
	}
	hs := secure.NewHandshake(false, secure.PSK(auth.Token, pskInfo), append(hello, hdr[:headerLen]...), nil)
	payload, err := hs.ReadMessage1(m1)
	if err != nil {
		conn.Write(message(statusAuth, nil))
		return nil, fmt.Errorf("%w: %s (the driver could not prove it)", ErrAuth, tokenMismatch)
	}
	if len(payload) != 0 {
		return nil, fmt.Errorf("%w: a payload in message 1", ErrNotMP)
	}
	var sign func(h []byte) ([]byte, error)
	if auth.Cert != nil {
		sign = func(h []byte) ([]byte, error) { return makeProof(auth.Cert, labelWorker, h) }
	}
	m2, send, recv, err := hs.WriteMessage2(nil, sign)
	if err == nil && len(m2) > secure.MaxMessage {
		err = fmt.Errorf("this node's certificate proof makes a message of %d bytes; at most %d fit: use a shorter chain", len(m2), secure.MaxMessage)
	}
	if err != nil {
		conn.Write(message(statusAuth, nil))
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if _, err := conn.Write(message(statusOK, m2)); err != nil {
		return nil, fmt.Errorf("mp: handshake: %w", err)
	}
	sc := secure.NewConn(conn, send, recv)
	if auth.Cert == nil {
		return sc, nil
	}
	proof, err := readBlock(sc)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w (the driver closed the connection: it did not accept this node's certificate, or has none)", ErrAuth)
		}
		return nil, fmt.Errorf("mp: handshake: reading the driver's certificate: %w", err)
	}
	if err := verifyProof(proof, labelDriver, hs.Hash(), auth.CA, x509.ExtKeyUsageClientAuth); err != nil {
		writeBlock(sc, []byte(err.Error()))
		return nil, fmt.Errorf("%w: the driver's certificate: %v", ErrAuth, err)
	}
	if err := writeBlock(sc, nil); err != nil {
		return nil, fmt.Errorf("mp: handshake: %w", err)
	}
	return sc, nil
}
