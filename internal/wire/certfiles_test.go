package wire

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpgo/mp/internal/testenv"
)

// renew writes the files as Kubernetes renews a Secret volume: the new
// files in a new directory, then the link the paths go through swapped.
func renew(t *testing.T, dir string, certPEM, keyPEM, caPEM []byte) {
	t.Helper()
	data, err := os.MkdirTemp(dir, "..data-")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": caPEM} {
		if err := os.WriteFile(filepath.Join(data, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)) // exists after the first time
	}
}

func TestCertFilesRenewed(t *testing.T) {
	dir := t.TempDir()
	c1, k1, a1 := testenv.PKI(t, "first")
	renew(t, dir, c1, k1, a1)
	files, err := LoadCertFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(c *Certificate) string {
		x, err := x509.ParseCertificate(c.Chain[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.Subject.CommonName
	}
	cert, _, err := files.Current()
	if err != nil || leaf(cert) != "first" {
		t.Fatalf("Current() = %s, %v; want the first certificate", leaf(cert), err)
	}

	c2, k2, a2 := testenv.PKI(t, "second")
	renew(t, dir, c2, k2, a2)
	cert, pool, err := files.Current()
	if err != nil || leaf(cert) != "second" {
		t.Fatalf("after a renewal, Current() = %s, %v; want the second certificate", leaf(cert), err)
	}
	second, _ := pem.Decode(c2)
	x2, _ := x509.ParseCertificate(second.Bytes)
	if _, err := x2.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the renewed CA does not verify the renewed certificate: %v", err)
	}

	// A renewal whose key is not the certificate's: the second stays, and
	// the error is said once.
	c3, _, a3 := testenv.PKI(t, "third")
	renew(t, dir, c3, k2, a3)
	cert, _, err = files.Current()
	if err == nil || !strings.Contains(err.Error(), "is not the key of certificate") || leaf(cert) != "second" {
		t.Fatalf("a mismatched renewal: Current() = %s, %v; want the second certificate and the mismatch", leaf(cert), err)
	}
	cert, _, err = files.Current()
	if err != nil || leaf(cert) != "second" {
		t.Fatalf("again without a change: Current() = %s, %v; want the second certificate, no error", leaf(cert), err)
	}
	if !bytes.Equal(cert.Chain[0], x2.Raw) {
		t.Fatal("the chain kept is not the second certificate's")
	}
}
