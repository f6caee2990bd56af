// Package noisevectors checks mp's Noise handshake (internal/secure), which
// is written on the standard library, against a second implementation,
// github.com/flynn/noise: against the test vectors published with it
// (vectors.txt in its module, read from the module cache, not copied here)
// and in live handshakes both ways. It is a module of its own so that mp
// does not depend on flynn/noise.
package noisevectors

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flynn/noise"
	"github.com/mpgo/mp/internal/secure"
)

// vectors returns the NNpsk0_25519_AESGCM_SHA256 entries of flynn/noise's
// vectors.txt, each as key=value.
func vectors(t *testing.T) []map[string]string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/flynn/noise").Output()
	if err != nil {
		t.Fatalf("finding flynn/noise's module: %v", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "vectors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all []map[string]string
	var cur map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if k == "handshake" {
			cur = nil
			if v == secure.Protocol {
				cur = map[string]string{}
				all = append(all, cur)
			}
			continue
		}
		if cur != nil {
			cur[k] = v
		}
	}
	if len(all) == 0 {
		t.Fatalf("no %s vectors", secure.Protocol)
	}
	return all
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seal encrypts one transport message as Noise does with k.
func seal(t *testing.T, k secure.Keys, payload []byte) []byte {
	b, _ := aes.NewCipher(k.Key[:])
	g, _ := cipher.NewGCM(b)
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], k.Nonce)
	return g.Seal(nil, n[:], payload, nil)
}

func TestVectors(t *testing.T) {
	for i, v := range vectors(t) {
		ei, err := ecdh.X25519().NewPrivateKey(unhex(t, v["gen_init_ephemeral"]))
		if err != nil {
			t.Fatal(err)
		}
		er, err := ecdh.X25519().NewPrivateKey(unhex(t, v["gen_resp_ephemeral"]))
		if err != nil {
			t.Fatal(err)
		}
		var psk [32]byte
		copy(psk[:], unhex(t, v["preshared_key"]))
		prologue := unhex(t, v["prologue"])
		ini := secure.NewHandshake(true, psk, prologue, ei)
		res := secure.NewHandshake(false, psk, prologue, er)

		m0, err := ini.WriteMessage1(nil, unhex(t, v["msg_0_payload"]))
		if err != nil || !bytes.Equal(m0, unhex(t, v["msg_0_ciphertext"])) {
			t.Fatalf("vector %d: message 1\n got %x\nwant %s (%v)", i, m0, v["msg_0_ciphertext"], err)
		}
		if p, err := res.ReadMessage1(m0); err != nil || !bytes.Equal(p, unhex(t, v["msg_0_payload"])) {
			t.Fatalf("vector %d: reading message 1: %x %v", i, p, err)
		}
		m1, rsend, rrecv, err := res.WriteMessage2(nil, func([]byte) ([]byte, error) { return unhex(t, v["msg_1_payload"]), nil })
		if err != nil || !bytes.Equal(m1, unhex(t, v["msg_1_ciphertext"])) {
			t.Fatalf("vector %d: message 2\n got %x\nwant %s (%v)", i, m1, v["msg_1_ciphertext"], err)
		}
		p, _, isend, irecv, err := ini.ReadMessage2(m1)
		if err != nil || !bytes.Equal(p, unhex(t, v["msg_1_payload"])) {
			t.Fatalf("vector %d: reading message 2: %x %v", i, p, err)
		}
		if isend != rrecv || irecv != rsend {
			t.Fatalf("vector %d: the two sides' keys differ", i)
		}
		if c := seal(t, isend, unhex(t, v["msg_2_payload"])); !bytes.Equal(c, unhex(t, v["msg_2_ciphertext"])) {
			t.Fatalf("vector %d: transport message 3\n got %x\nwant %s", i, c, v["msg_2_ciphertext"])
		}
		if c := seal(t, rsend, unhex(t, v["msg_3_payload"])); !bytes.Equal(c, unhex(t, v["msg_3_ciphertext"])) {
			t.Fatalf("vector %d: transport message 4\n got %x\nwant %s", i, c, v["msg_3_ciphertext"])
		}
	}
}

func flynnConfig(initiator bool, psk [32]byte, prologue []byte) noise.Config {
	return noise.Config{
		CipherSuite:           noise.NewCipherSuite(noise.DH25519, noise.CipherAESGCM, noise.HashSHA256),
		Pattern:               noise.HandshakeNN,
		Initiator:             initiator,
		Prologue:              prologue,
		PresharedKey:          psk[:],
		PresharedKeyPlacement: 0,
	}
}

// TestInterop runs live handshakes with fresh keys, ours against flynn's,
// in both roles, and checks the handshake hashes and transport keys agree.
func TestInterop(t *testing.T) {
	psk := secure.PSK([]byte("a token"), "test")
	prologue := []byte("prologue")
	t.Run("we initiate", func(t *testing.T) {
		ini := secure.NewHandshake(true, psk, prologue, nil)
		res, err := noise.NewHandshakeState(flynnConfig(false, psk, prologue))
		if err != nil {
			t.Fatal(err)
		}
		m0, _ := ini.WriteMessage1(nil, []byte("hi"))
		if p, _, _, err := res.ReadMessage(nil, m0); err != nil || string(p) != "hi" {
			t.Fatalf("flynn reading our message 1: %q %v", p, err)
		}
		m1, c1, c2, err := res.WriteMessage(nil, []byte("there"))
		if err != nil {
			t.Fatal(err)
		}
		p, _, send, recv, err := ini.ReadMessage2(m1)
		if err != nil || string(p) != "there" {
			t.Fatalf("reading flynn's message 2: %q %v", p, err)
		}
		if !bytes.Equal(ini.Hash(), res.ChannelBinding()) {
			t.Fatal("handshake hashes differ")
		}
		if send.Key != c1.UnsafeKey() || recv.Key != c2.UnsafeKey() {
			t.Fatal("transport keys differ")
		}
	})
	t.Run("flynn initiates", func(t *testing.T) {
		ini, err := noise.NewHandshakeState(flynnConfig(true, psk, prologue))
		if err != nil {
			t.Fatal(err)
		}
		res := secure.NewHandshake(false, psk, prologue, nil)
		m0, _, _, err := ini.WriteMessage(nil, []byte("hi"))
		if err != nil {
			t.Fatal(err)
		}
		if p, err := res.ReadMessage1(m0); err != nil || string(p) != "hi" {
			t.Fatalf("reading flynn's message 1: %q %v", p, err)
		}
		m1, send, recv, err := res.WriteMessage2(nil, func([]byte) ([]byte, error) { return []byte("there"), nil })
		if err != nil {
			t.Fatal(err)
		}
		p, c1, c2, err := ini.ReadMessage(nil, m1)
		if err != nil || string(p) != "there" {
			t.Fatalf("flynn reading our message 2: %q %v", p, err)
		}
		if !bytes.Equal(res.Hash(), ini.ChannelBinding()) {
			t.Fatal("handshake hashes differ")
		}
		if recv.Key != c1.UnsafeKey() || send.Key != c2.UnsafeKey() {
			t.Fatal("transport keys differ")
		}
	})
	t.Run("another psk", func(t *testing.T) {
		ini := secure.NewHandshake(true, psk, prologue, nil)
		res, _ := noise.NewHandshakeState(flynnConfig(false, secure.PSK([]byte("another"), "test"), prologue))
		m0, _ := ini.WriteMessage1(nil, nil)
		if _, _, _, err := res.ReadMessage(nil, m0); err == nil {
			t.Fatal("flynn accepted a message 1 made with another psk")
		}
	})
}
