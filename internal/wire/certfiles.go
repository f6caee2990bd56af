package wire

import (
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// CertFiles is a certificate, its key and a CA bundle read from files, and
// read again when the files change: cert-manager, and Kubernetes' Secret
// volumes, renew them in place, and a long-running poolworker or driver
// must take the new ones without a restart. Its methods are safe for
// concurrent use.
type CertFiles struct {
	cert, key, ca string

	mu      sync.Mutex
	stamps  [3]stamp // of the files when last read, whether or not that read succeeded
	current *Certificate
	pool    *x509.CertPool
}

// stamp tells whether a file changed: Kubernetes renews a Secret volume by
// swapping a symbolic link to a new directory, which changes the time and
// usually the size of what the path leads to.
type stamp struct {
	mod  time.Time
	size int64
	err  bool // the file could not be stat'd
}

func stampOf(file string) stamp {
	fi, err := os.Stat(file)
	if err != nil {
		return stamp{err: true}
	}
	return stamp{mod: fi.ModTime(), size: fi.Size()}
}

// LoadCertFiles reads the files as [LoadCertificates] does, and fails as it
// does.
func LoadCertFiles(certFile, keyFile, caFile string) (*CertFiles, error) {
	c := &CertFiles{cert: certFile, key: keyFile, ca: caFile}
	c.stamps = c.stat()
	var err error
	if c.current, c.pool, err = LoadCertificates(certFile, keyFile, caFile); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CertFiles) stat() [3]stamp {
	return [3]stamp{stampOf(c.cert), stampOf(c.key), stampOf(c.ca)}
}

// Current returns the certificate and the CA. If a file changed since it
// was last read, it reads the three again first: three stat calls each
// time, a few microseconds beside a handshake's signatures. If that read
// fails (a renewal half written, a key that does not match), it returns the
// last good ones and the error, once: it tries again only when a file
// changes again.
func (c *CertFiles) Current() (*Certificate, *x509.CertPool, error) {
	now := c.stat()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now == c.stamps {
		return c.current, c.pool, nil
	}
	c.stamps = now
	cert, pool, err := LoadCertificates(c.cert, c.key, c.ca)
	if err != nil {
		return c.current, c.pool, fmt.Errorf("reading the renewed certificates: %w (the previous ones stay in use)", err)
	}
	c.current, c.pool = cert, pool
	return cert, pool, nil
}
