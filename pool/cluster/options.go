package cluster

import (
	"fmt"
	"github.com/mpgo/mp/internal/backend"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mpgo/mp/internal/token"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
)

// Defaults of the cluster's own settings.
const (
	DefaultRetries          = 3
	DefaultHeartbeat        = 1 * time.Second
	DefaultHeartbeatTimeout = 2 * time.Second
	DefaultReconnectFor     = 5 * time.Second
	DefaultResolveEvery     = 10 * time.Second
	DefaultStartTimeout     = 30 * time.Second
)

// settings are the cluster backend's own configuration.
type settings struct {
	addrs            []string        // poolworker addresses or names; empty: embedded
	listen           string          // address workers dial in to; "": none
	resolveEvery     time.Duration   // how often names in addrs are resolved again
	minMembers       int             // members New waits for
	startTimeout     time.Duration   // how long New waits for them
	token            string          // shared token for poolworkers
	tlsCert, tlsKey  string          // files of this driver's certificate and key; "": none
	tlsCA            string          // file of the CA that signs poolworkers' certificates
	auth             wire.Auth       // the token, as the handshake takes it
	certs            *wire.CertFiles // certificates, read again when their files change; nil: none
	retries          int             // re-runs of a lost chunk
	heartbeat        time.Duration   // keepalive interval
	heartbeatTimeout time.Duration   // a ping unanswered this long kills the connection
	reconnectFor     time.Duration   // how long a lost worker is retried before it is given up
	chunkTimeout     time.Duration   // a chunk unanswered this long takes its connection down; 0: never
	maxFrame         int
	log              *slog.Logger // nil: no logs
}

type setting struct {
	desc  string
	apply func(*settings) error
}

func (s setting) Backend() string { return "cluster" }
func (s setting) String() string  { return s.desc }

func opt(desc string, apply func(*settings) error) pool.Option {
	return func(c *backend.Config) error {
		c.Settings = append(c.Settings, setting{desc, apply})
		return nil
	}
}

// Addresses makes the pool use poolworker daemons at the given host:port
// addresses instead of starting worker processes on this machine. Without
// it, the MP_ADDRESS environment variable (comma-separated) is used if set.
func Addresses(addrs ...string) pool.Option {
	return opt(fmt.Sprintf("cluster.Addresses(%q)", addrs), func(s *settings) error {
		if len(addrs) == 0 {
			return fmt.Errorf("%w: cluster.Addresses() needs at least one host:port", pool.ErrConfig)
		}
		s.addrs = append([]string(nil), addrs...)
		return nil
	})
}

// Listen makes the driver listen on addr (host:port) for workers that dial
// in (poolworker -connect): each joins the pool as a member when its
// handshake and setup succeed, and leaves when its connection ends. Without
// it, the MP_LISTEN environment variable is used if set. It may be combined
// with [Addresses]; with Listen alone New waits, up to [StartTimeout], for
// [MinMembers] workers to dial in. The listener closes with the pool.
func Listen(addr string) pool.Option {
	return opt(fmt.Sprintf("cluster.Listen(%q)", addr), func(s *settings) error {
		s.listen = addr
		return nil
	})
}

// ResolveEvery sets how often the names among the addresses (host names
// such as a Kubernetes headless Service) are resolved again: an address
// that appears becomes a member and takes chunks of the calls running; one
// that disappears is drained. Default 10s.
func ResolveEvery(d time.Duration) pool.Option {
	return opt(fmt.Sprintf("cluster.ResolveEvery(%v)", d), func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("%w: cluster.ResolveEvery(%v): must be positive", pool.ErrConfig, d)
		}
		s.resolveEvery = d
		return nil
	})
}

// MinMembers sets how many members (poolworker connections) New waits for
// before it returns: with fewer, it fails. Members that do not answer at
// first are logged and retried in the background. Default 1. It does not
// apply to embedded workers, which must all start.
func MinMembers(n int) pool.Option {
	return opt(fmt.Sprintf("cluster.MinMembers(%d)", n), func(s *settings) error {
		if n < 1 {
			return fmt.Errorf("%w: cluster.MinMembers(%d): must be at least 1", pool.ErrConfig, n)
		}
		s.minMembers = n
		return nil
	})
}

// StartTimeout sets how long New waits for MinMembers when workers dial in
// ([Listen]). Default 30s.
func StartTimeout(d time.Duration) pool.Option {
	return opt(fmt.Sprintf("cluster.StartTimeout(%v)", d), func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("%w: cluster.StartTimeout(%v): must be positive", pool.ErrConfig, d)
		}
		s.startTimeout = d
		return nil
	})
}

// Token sets the shared secret that authenticates the driver to poolworkers
// and back. Without it, the MP_TOKEN environment variable is used. A
// poolworker reached at an address that is not loopback, or a listener
// ([Listen]) bound off loopback, needs a token of at least 128 bits (32 hex
// digits or 22 base64 characters of random; `poolworker -new-token` makes
// one): with a shorter one the driver refuses to dial or listen, before it
// sends anything.
func Token(token string) pool.Option {
	return opt("cluster.Token(…)", func(s *settings) error {
		s.token = token
		return nil
	})
}

// TLS adds CA-based mutual authentication to the token's (spec.md,
// "Certificates"): this driver proves it holds the key of the certificate in
// certFile (PEM, its chain after it) with keyFile, and accepts only
// poolworkers whose certificate caFile's CA signed for server auth. The
// poolworkers must run with -tls-cert, -tls-key and -tls-ca. New reads the
// files and fails if they do not hold a certificate, its key and a CA; they
// are read again, before a connection's handshake, when they have changed
// (renewed in place, as cert-manager does), and if that fails the previous
// ones stay in use and the pool's logger says why. Without this option, MP_TLS_CERT, MP_TLS_KEY and
// MP_TLS_CA are used if set. It costs one signature and one verification
// per connection; nothing per task.
func TLS(certFile, keyFile, caFile string) pool.Option {
	return opt(fmt.Sprintf("cluster.TLS(%q, %q, %q)", certFile, keyFile, caFile), func(s *settings) error {
		s.tlsCert, s.tlsKey, s.tlsCA = certFile, keyFile, caFile
		return nil
	})
}

// loadAuth builds what the handshake proves with from the token and the
// certificate files, naming the file or setting at fault.
func (s *settings) loadAuth() error {
	s.auth = wire.Auth{Token: []byte(s.token)}
	if s.tlsCert == "" && s.tlsKey == "" && s.tlsCA == "" {
		return nil
	}
	if s.tlsCert == "" || s.tlsKey == "" || s.tlsCA == "" {
		return fmt.Errorf("%w: certificates (cluster.TLS or MP_TLS_CERT, MP_TLS_KEY, MP_TLS_CA): all three files are needed, got cert %q, key %q, CA %q", pool.ErrConfig, s.tlsCert, s.tlsKey, s.tlsCA)
	}
	certs, err := wire.LoadCertFiles(s.tlsCert, s.tlsKey, s.tlsCA)
	if err != nil {
		return fmt.Errorf("%w: cluster.TLS or MP_TLS_CERT, MP_TLS_KEY, MP_TLS_CA: %v", pool.ErrConfig, err)
	}
	s.certs = certs
	return nil
}

// Retries sets how many times a chunk lost with its worker (killed, or gone
// silent) is re-run elsewhere before its call fails. Default 3; 0 means
// never.
func Retries(n int) pool.Option {
	return opt(fmt.Sprintf("cluster.Retries(%d)", n), func(s *settings) error {
		if n < 0 {
			return fmt.Errorf("%w: cluster.Retries(%d): must be 0 or more", pool.ErrConfig, n)
		}
		s.retries = n
		return nil
	})
}

// Heartbeat sets how often each connection is pinged and how long a ping may
// go unanswered before the worker is taken for dead: a silent worker is
// detected within interval+timeout. Defaults 1s and 2s.
func Heartbeat(interval, timeout time.Duration) pool.Option {
	return opt(fmt.Sprintf("cluster.Heartbeat(%v, %v)", interval, timeout), func(s *settings) error {
		if interval <= 0 || timeout <= 0 {
			return fmt.Errorf("%w: cluster.Heartbeat(%v, %v): both must be positive", pool.ErrConfig, interval, timeout)
		}
		s.heartbeat, s.heartbeatTimeout = interval, timeout
		return nil
	})
}

// ReconnectFor sets how long a lost worker process is restarted before it
// is given up, and how long the pool may have no worker connected before
// calls fail with pool.ErrNoWorkers (until one connects again). Poolworker
// addresses are redialled for as long as they are listed. Default 5s.
func ReconnectFor(d time.Duration) pool.Option {
	return opt(fmt.Sprintf("cluster.ReconnectFor(%v)", d), func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("%w: cluster.ReconnectFor(%v): must be positive", pool.ErrConfig, d)
		}
		s.reconnectFor = d
		return nil
	})
}

// ChunkTimeout bounds how long a chunk may stay unanswered on a
// connection, from when it is sent (its wait in the worker's queue
// included) to its result. A connection holding a chunk older than d is
// taken for stuck, as one that stops answering heartbeats is: it is
// closed, and its chunks run again elsewhere, each up to [Retries] times,
// after which the call fails with ErrWorkerLost naming ChunkTimeout. It is
// for nodes that answer heartbeats but never results (a function that
// hangs and ignores its context, a faulty node); choose d well above the
// longest a chunk may take. Default: no limit. It costs a check every d/4
// per connection.
func ChunkTimeout(d time.Duration) pool.Option {
	return opt(fmt.Sprintf("cluster.ChunkTimeout(%v)", d), func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("%w: cluster.ChunkTimeout(%v): must be positive", pool.ErrConfig, d)
		}
		s.chunkTimeout = d
		return nil
	})
}

// MaxMessage sets the largest message, in bytes, either end accepts: a chunk
// of arguments or of results must fit. Default 64 MiB.
func MaxMessage(n int) pool.Option {
	return opt(fmt.Sprintf("cluster.MaxMessage(%d)", n), func(s *settings) error {
		if n < 1<<10 {
			return fmt.Errorf("%w: cluster.MaxMessage(%d): at least 1024 bytes", pool.ErrConfig, n)
		}
		s.maxFrame = n
		return nil
	})
}

// Logger makes the pool log its workers' lives to l: connected (Info), lost
// with the cause and how long it had been silent (Warn), given up (Error).
// Default: no logs.
func Logger(l *slog.Logger) pool.Option {
	return opt("cluster.Logger(…)", func(s *settings) error {
		s.log = l
		return nil
	})
}

// checkToken refuses tok on addr, an address bound or dialled, if addr is
// not loopback and tok is under 128 bits: the driver proves first, so
// whoever it reaches could guess a weak token offline from its proof. The
// error wraps pool.ErrConfig; where names the address's role.
func checkToken(tok string, addr net.Addr, where string) error {
	if token.IsLoopback(addr) {
		return nil
	}
	if err := token.Check(tok, "MP_TOKEN or cluster.Token", where+" "+addr.String()); err != nil {
		return fmt.Errorf("%w: %w", pool.ErrConfig, err)
	}
	return nil
}

func newSettings(cfg *backend.Config) (settings, error) {
	s := settings{
		retries:          DefaultRetries,
		heartbeat:        DefaultHeartbeat,
		heartbeatTimeout: DefaultHeartbeatTimeout,
		reconnectFor:     DefaultReconnectFor,
		resolveEvery:     DefaultResolveEvery,
		minMembers:       1,
		startTimeout:     DefaultStartTimeout,
		token:            os.Getenv("MP_TOKEN"),
		tlsCert:          os.Getenv("MP_TLS_CERT"),
		tlsKey:           os.Getenv("MP_TLS_KEY"),
		tlsCA:            os.Getenv("MP_TLS_CA"),
		listen:           strings.TrimSpace(os.Getenv("MP_LISTEN")),
	}
	if env := strings.TrimSpace(os.Getenv("MP_ADDRESS")); env != "" {
		for _, a := range strings.Split(env, ",") {
			if a = strings.TrimSpace(a); a != "" {
				s.addrs = append(s.addrs, a)
			}
		}
	}
	if err := cfg.CheckBackend("cluster"); err != nil {
		return s, err
	}
	for _, b := range cfg.Settings {
		st, ok := b.(setting)
		if !ok {
			return s, fmt.Errorf("%w: %s says it is for the cluster backend but was not made by package cluster", pool.ErrConfig, b)
		}
		if err := st.apply(&s); err != nil {
			return s, err
		}
	}
	for _, a := range s.addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return s, fmt.Errorf("%w: address %q: want host:port (%v)", pool.ErrConfig, a, err)
		}
	}
	if s.listen != "" {
		if _, _, err := net.SplitHostPort(s.listen); err != nil {
			return s, fmt.Errorf("%w: listen address %q (cluster.Listen or MP_LISTEN): want host:port (%v)", pool.ErrConfig, s.listen, err)
		}
	}
	if err := s.loadAuth(); err != nil {
		return s, err
	}
	return s, nil
}
