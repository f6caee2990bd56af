package wire

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mpgo/mp/internal/secure"
)

// Labels of the certificate proofs (spec.md, "Certificates"), so that a
// worker's proof can never pass for a driver's.
const (
	labelWorker = "mp v2 worker certificate"
	labelDriver = "mp v2 driver certificate"
)

// maxChain bounds the certificates in a proof.
const maxChain = 8

// maxBlock is the most a block (a proof or a verdict) holds: one record
// less its length.
const maxBlock = secure.MaxRecordPlain - 2

// signed is what a certificate proof signs: the label, a zero byte, and the
// handshake hash.
func signed(label string, h []byte) []byte {
	return append(append([]byte(label), 0), h...)
}

// makeProof returns cert's certificate proof over the handshake hash h: its
// chain, and a signature by its key over label and h.
func makeProof(cert *Certificate, label string, h []byte) ([]byte, error) {
	if len(cert.Chain) == 0 || len(cert.Chain) > maxChain {
		return nil, fmt.Errorf("mp: a certificate chain of %d certificates: want 1 to %d", len(cert.Chain), maxChain)
	}
	signer := cert.Key
	msg := signed(label, h)
	var sig []byte
	var err error
	switch signer.Public().(type) {
	case ed25519.PublicKey:
		sig, err = signer.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = signer.Sign(rand.Reader, d[:], crypto.SHA256)
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = signer.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default:
		return nil, fmt.Errorf("mp: certificate keys of type %T are not supported: use ECDSA, Ed25519 or RSA", signer.Public())
	}
	if err != nil {
		return nil, fmt.Errorf("mp: signing the certificate proof: %w", err)
	}
	b := []byte{byte(len(cert.Chain))}
	for _, der := range cert.Chain {
		if len(der) > 0xffff {
			return nil, errors.New("mp: a certificate over 65535 bytes")
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(der)))
		b = append(b, der...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sig)))
	b = append(b, sig...)
	if len(b) > maxBlock {
		return nil, fmt.Errorf("mp: the certificate proof is %d bytes; at most %d fit", len(b), maxBlock)
	}
	return b, nil
}

// parseProof splits a certificate proof into its chain and signature.
func parseProof(b []byte) (chain [][]byte, sig []byte, err error) {
	bad := errors.New("malformed certificate proof")
	if len(b) < 1 {
		return nil, nil, errors.New("no certificate")
	}
	n := int(b[0])
	if n < 1 || n > maxChain {
		return nil, nil, fmt.Errorf("a chain of %d certificates: want 1 to %d", n, maxChain)
	}
	b = b[1:]
	next := func() ([]byte, error) {
		if len(b) < 2 {
			return nil, bad
		}
		l := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+l {
			return nil, bad
		}
		v := b[2 : 2+l]
		b = b[2+l:]
		return v, nil
	}
	for range n {
		der, err := next()
		if err != nil {
			return nil, nil, err
		}
		chain = append(chain, der)
	}
	if sig, err = next(); err != nil {
		return nil, nil, err
	}
	if len(b) != 0 {
		return nil, nil, bad
	}
	return chain, sig, nil
}

// verifyProof checks a certificate proof over the handshake hash h: the
// chain verifies against ca for usage, and the leaf's key signed label and
// h.
func verifyProof(proof []byte, label string, h []byte, ca *x509.CertPool, usage x509.ExtKeyUsage) error {
	chain, sig, err := parseProof(proof)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, der := range chain[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		inter.AddCert(c)
	}
	if ca == nil {
		return errors.New("no CA to verify it with")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return err
	}
	var algo x509.SignatureAlgorithm
	switch leaf.PublicKey.(type) {
	case ed25519.PublicKey:
		algo = x509.PureEd25519
	case *ecdsa.PublicKey:
		algo = x509.ECDSAWithSHA256
	case *rsa.PublicKey:
		algo = x509.SHA256WithRSAPSS
	default:
		return fmt.Errorf("keys of type %T are not supported", leaf.PublicKey)
	}
	if err := leaf.CheckSignature(algo, signed(label, h), sig); err != nil {
		return fmt.Errorf("its signature over this session does not check (%v)", err)
	}
	return nil
}

// writeBlock writes b (at most maxBlock bytes) with a u16 length, in one
// record of sc.
func writeBlock(sc *secure.Conn, b []byte) error {
	if len(b) > maxBlock {
		b = b[:maxBlock]
	}
	out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	_, err := sc.Write(append(out, b...))
	return err
}

// readBlock reads what writeBlock wrote.
func readBlock(sc *secure.Conn) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(sc, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(sc, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Certificate is a side's certificate chain, leaf first, and the leaf's
// private key.
type Certificate struct {
	Chain [][]byte      // DER
	Key   crypto.Signer // ECDSA, Ed25519 or RSA
}

// LoadCertificates reads a certificate chain and its key (PEM files: the
// chain leaf first; the key as PKCS #8, SEC 1 or PKCS #1) and a CA bundle
// (PEM), for Auth's Cert and CA. Its errors name the file at fault. It
// parses PEM itself rather than through crypto/tls, which would add a
// megabyte to every program that links mp.
func LoadCertificates(certFile, keyFile, caFile string) (*Certificate, *x509.CertPool, error) {
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %v", err)
	}
	var cert Certificate
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			cert.Chain = append(cert.Chain, blk.Bytes)
		}
	}
	if len(cert.Chain) == 0 {
		return nil, nil, fmt.Errorf("certificate %s: no PEM CERTIFICATE in it", certFile)
	}
	leaf, err := x509.ParseCertificate(cert.Chain[0])
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s: %v", certFile, err)
	}
	if cert.Key, err = loadKey(keyFile); err != nil {
		return nil, nil, err
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.Key.Public()) {
		return nil, nil, fmt.Errorf("key %s is not the key of certificate %s", keyFile, certFile)
	}
	pemCA, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, fmt.Errorf("CA: %v", err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(pemCA) {
		return nil, nil, fmt.Errorf("CA %s: no PEM certificate in it", caFile)
	}
	return &cert, ca, nil
}

// loadKey reads a PEM private key that can sign.
func loadKey(file string) (crypto.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("key: %v", err)
	}
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return nil, fmt.Errorf("key %s: no PEM private key in it", file)
		}
		if !strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			continue
		}
		var k any
		if k, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
			if k, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
				if k, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
					return nil, fmt.Errorf("key %s: not a PKCS #8, SEC 1 or PKCS #1 private key", file)
				}
			}
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key %s: a %T cannot sign", file, k)
		}
		return s, nil
	}
}
