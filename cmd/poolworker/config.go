//go:build unix

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mpgo/mp/internal/token"
	"github.com/mpgo/mp/internal/wire"
)

// auth is what the handshake proves this node with.
// auth returns what the handshake proves with. With certificates, it reads
// them again if their files changed (see wire.CertFiles); if that fails,
// it returns the previous ones and the error, once.
func (c config) auth() (wire.Auth, error) {
	a := wire.Auth{Token: c.token}
	if c.certs == nil {
		return a, nil
	}
	var err error
	a.Cert, a.CA, err = c.certs.Current()
	return a, err
}

// config is poolworker's configuration, from flags and the environment.
type config struct {
	listen       string          // address to listen on
	connect      string          // driver address to dial instead (-connect); "": listen
	giveUpAfter  time.Duration   // -connect: exit once the driver is unreachable this long; 0: never
	token        []byte          // shared secret; never empty
	tokenFlag    bool            // the token came from -token on the command line (deprecated)
	certs        *wire.CertFiles // -tls-cert, -tls-key and -tls-ca (drivers' certificates); nil: none
	newToken     bool            // print a new token and exit
	user         *runAs          // -user: run worker processes as this user; nil: as poolworker's
	capacity     int             // chunks each worker process runs at once
	cacheDir     string          // where received executables are kept
	cacheMax     int64           // bytes of executables kept; least recently used ones go
	maxBinary    int64           // largest executable accepted, in bytes
	metrics      string          // host:port serving /metrics, /healthz, /readyz; "" for none
	version      bool            // print the version and exit
	logFormat    string          // "text" or "json"
	logLevel     slog.Level      // least severe level logged
	drainTimeout time.Duration   // how long children get to finish on SIGTERM
}

// Defaults.
const (
	defaultListen       = "127.0.0.1:7450"
	defaultMaxBinary    = 1 << 30
	defaultCacheMax     = 2 << 30
	defaultDrainTimeout = 30 * time.Second
)

// errConfig wraps every configuration error: poolworker exits with code 2.
var errConfig = errors.New("bad configuration")

// configErr returns an error wrapping errConfig.
func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, args...))
}

// flagEnv maps each flag to the environment variable that sets it when the
// flag is not given.
var flagEnv = []struct{ flag, env string }{
	{"listen", "POOLWORKER_LISTEN"},
	{"connect", "POOLWORKER_CONNECT"},
	{"give-up-after", "POOLWORKER_GIVE_UP_AFTER"},
	{"token", "MP_TOKEN"},
	{"token-file", "POOLWORKER_TOKEN_FILE"},
	{"capacity", "POOLWORKER_CAPACITY"},
	{"cache-dir", "POOLWORKER_CACHE_DIR"},
	{"cache-max", "POOLWORKER_CACHE_MAX"},
	{"max-binary", "POOLWORKER_MAX_BINARY"},
	{"log-format", "POOLWORKER_LOG_FORMAT"},
	{"log-level", "POOLWORKER_LOG_LEVEL"},
	{"drain-timeout", "POOLWORKER_DRAIN_TIMEOUT"},
	{"metrics-listen", "POOLWORKER_METRICS_LISTEN"},
	{"user", "POOLWORKER_USER"},
	{"tls-cert", "POOLWORKER_TLS_CERT"},
	{"tls-key", "POOLWORKER_TLS_KEY"},
	{"tls-ca", "POOLWORKER_TLS_CA"},
}

// rawFlags holds the flags' values before they are checked.
type rawFlags struct {
	listen, connect, token, tokenFile string
	cacheDir, cacheMax, maxBinary     string
	logFormat, logLevel, metrics      string
	user                              string
	tlsCert, tlsKey, tlsCA            string
	capacity                          int
	drainTimeout, giveUpAfter         time.Duration
	version, newToken                 bool
}

// newFlagSet defines poolworker's flags on a new FlagSet that reports errors
// instead of printing them or exiting.
func newFlagSet(r *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("poolworker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&r.listen, "listen", defaultListen, "`host:port` to listen on; port 0 picks a free port (the log says which)")
	fs.StringVar(&r.connect, "connect", "", "dial the driver at `host:port` (its MP_LISTEN) instead of listening, again whenever its worker process ends")
	fs.DurationVar(&r.giveUpAfter, "give-up-after", 0, "with -connect: exit (status 0) once the driver has been unreachable this long, as a per-job worker should when its driver is done; 0 keeps trying")
	fs.StringVar(&r.token, "token", "", "deprecated: the shared secret drivers must prove they hold, visible in ps to every user;\nuse -token-file or MP_TOKEN")
	fs.StringVar(&r.tokenFile, "token-file", "", "read the shared secret drivers must prove they hold from this `file` (surrounding\nwhite space is ignored); off loopback at least 128 bits: see -new-token")
	fs.BoolVar(&r.newToken, "new-token", false, "print a new token (256 random bits, base64url) and exit")
	fs.StringVar(&r.user, "user", "", "run worker processes as this `user` (a name or UID), with its primary group and no other;\nneeds root. Without it they run as poolworker's user")
	fs.IntVar(&r.capacity, "capacity", runtime.NumCPU(), "chunks each worker process runs at once (at least 1)")
	fs.StringVar(&r.cacheDir, "cache-dir", "", "`directory` of received executables (default $XDG_CACHE_HOME/mp/poolworker)")
	fs.StringVar(&r.cacheMax, "cache-max", "2GiB", "bytes of executables the cache keeps: past it, the least recently used ones\nno worker process runs are removed (same units as -max-binary)")
	fs.StringVar(&r.maxBinary, "max-binary", "1GiB", "largest executable accepted: bytes, or with a suffix KiB, MiB or GiB")
	fs.StringVar(&r.metrics, "metrics-listen", "", "`host:port` serving /healthz (live), /readyz (accepting drivers; 503 while\ndraining) and /metrics (Prometheus); off if empty")
	fs.StringVar(&r.tlsCert, "tls-cert", "", "PEM `file` of this node's certificate (its chain after it), for CA-based mutual\nauthentication on top of the token: drivers then need MP_TLS_CERT, MP_TLS_KEY, MP_TLS_CA.\nThe three files are read again when they change (renewed in place, as by cert-manager)")
	fs.StringVar(&r.tlsKey, "tls-key", "", "PEM `file` of the private key of -tls-cert")
	fs.StringVar(&r.tlsCA, "tls-ca", "", "PEM `file` of the CA whose certificates (client auth) drivers must present")
	fs.BoolVar(&r.version, "version", false, "print poolworker's version and exit")
	fs.StringVar(&r.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&r.logLevel, "log-level", "info", "least severe level logged: debug, info, warn or error")
	fs.DurationVar(&r.drainTimeout, "drain-timeout", defaultDrainTimeout, "on SIGTERM or SIGINT, how long worker processes get to finish their chunks before they are killed")
	return fs
}

// parseConfig reads the configuration from args and, for flags not given,
// from the environment through getenv. It returns flag.ErrHelp for -h, and
// errors wrapping errConfig that say what to fix.
func parseConfig(args []string, getenv func(string) string) (config, *flag.FlagSet, error) {
	var r rawFlags
	fs := newFlagSet(&r)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, fs, err
		}
		return config{}, fs, configErr("%v", err)
	}
	if fs.NArg() > 0 {
		return config{}, fs, configErr("unexpected argument %q: poolworker takes only flags", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := applyEnv(fs, getenv, given); err != nil {
		return config{}, fs, err
	}
	cfg, err := r.check(given)
	return cfg, fs, err
}

// applyEnv sets each flag not given on the command line from its
// environment variable, if that is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string, given map[string]bool) error {
	for _, fe := range flagEnv {
		v := getenv(fe.env)
		if v == "" || given[fe.flag] {
			continue
		}
		if err := fs.Set(fe.flag, v); err != nil {
			return configErr("%s=%q (for -%s): %v", fe.env, v, fe.flag, err)
		}
	}
	return nil
}

// check validates the raw flags and turns them into a config. given holds
// the flags set on the command line.
func (r *rawFlags) check(given map[string]bool) (config, error) {
	cfg := config{listen: r.listen, connect: r.connect, giveUpAfter: r.giveUpAfter, capacity: r.capacity,
		logFormat: r.logFormat, drainTimeout: r.drainTimeout, metrics: r.metrics, version: r.version, newToken: r.newToken}
	if cfg.version || cfg.newToken {
		return cfg, nil
	}
	var err error
	if cfg.capacity < 1 || cfg.capacity > wire.MaxCapacity {
		return cfg, configErr("-capacity %d: must be 1 to %d (the chunks each worker process runs at once)", cfg.capacity, wire.MaxCapacity)
	}
	if cfg.drainTimeout < 0 {
		return cfg, configErr("-drain-timeout %v: must not be negative", cfg.drainTimeout)
	}
	if cfg.maxBinary, err = parseSize(r.maxBinary); err != nil {
		return cfg, configErr("-max-binary %q: %v", r.maxBinary, err)
	}
	if cfg.cacheMax, err = parseSize(r.cacheMax); err != nil {
		return cfg, configErr("-cache-max %q: %v", r.cacheMax, err)
	}
	if cfg.metrics != "" {
		if _, port, err := net.SplitHostPort(cfg.metrics); err != nil {
			return cfg, configErr("-metrics-listen %q: want host:port, e.g. :9450 or 127.0.0.1:9450 (%v)", cfg.metrics, err)
		} else if _, err := net.LookupPort("tcp", port); err != nil {
			return cfg, configErr("-metrics-listen %q: bad port %q", cfg.metrics, port)
		}
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		return cfg, configErr("-log-format %q: want text or json", cfg.logFormat)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(r.logLevel)); err != nil {
		return cfg, configErr("-log-level %q: want debug, info, warn or error", r.logLevel)
	}
	if cfg.token, err = r.readToken(given); err != nil {
		return cfg, err
	}
	cfg.tokenFlag = given["token"]
	if r.tlsCert != "" || r.tlsKey != "" || r.tlsCA != "" {
		if r.tlsCert == "" || r.tlsKey == "" || r.tlsCA == "" {
			return cfg, configErr("-tls-cert, -tls-key and -tls-ca go together: got %q, %q, %q", r.tlsCert, r.tlsKey, r.tlsCA)
		}
		if cfg.certs, err = wire.LoadCertFiles(r.tlsCert, r.tlsKey, r.tlsCA); err != nil {
			return cfg, configErr("-tls-cert, -tls-key, -tls-ca: %v", err)
		}
	}
	if cfg.giveUpAfter < 0 {
		return cfg, configErr("-give-up-after %v: must not be negative", cfg.giveUpAfter)
	}
	if cfg.giveUpAfter > 0 && cfg.connect == "" {
		return cfg, configErr("-give-up-after is for -connect: a listening poolworker waits for drivers")
	}
	if cfg.connect != "" {
		if given["listen"] {
			return cfg, configErr("both -listen and -connect are given: a poolworker either waits for drivers or dials one")
		}
		if err := checkConnect(cfg.connect); err != nil {
			return cfg, err
		}
	} else if err := checkListen(cfg.listen); err != nil {
		return cfg, err
	}
	if cfg.cacheDir, err = cacheDir(r.cacheDir); err != nil {
		return cfg, err
	}
	if r.user != "" {
		if cfg.user, err = lookupUser(r.user); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// runAs is the user worker processes run as (-user).
type runAs struct {
	name     string
	uid, gid uint32
	home     string
}

// lookupUser resolves -user: a name or a numeric UID known to the system.
// Switching users needs root.
func lookupUser(name string) (*runAs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var uerr error
		if u, uerr = user.LookupId(name); uerr != nil {
			return nil, configErr("-user %q: %v", name, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, configErr("-user %q: UID %q or GID %q is not a number", name, u.Uid, u.Gid)
	}
	if os.Geteuid() != 0 && int(uid) != os.Geteuid() {
		return nil, configErr("-user %s: poolworker runs as UID %d and only root can start processes as another user; "+
			"run poolworker as root with -user, or as that user without it", name, os.Geteuid())
	}
	home := u.HomeDir
	if home == "" {
		home = "/"
	}
	return &runAs{name: u.Username, uid: uint32(uid), gid: uint32(gid), home: home}, nil
}

// readToken returns the token from -token or -token-file (or their
// variables, MP_TOKEN and POOLWORKER_TOKEN_FILE). A flag on the command line
// wins over a variable; two of a kind are an error.
func (r *rawFlags) readToken(given map[string]bool) ([]byte, error) {
	useFile := r.tokenFile != ""
	switch {
	case given["token"] && given["token-file"]:
		return nil, configErr("both -token and -token-file are given: use one")
	case given["token"]:
		useFile = false
	case given["token-file"]:
		useFile = true
	case r.token != "" && r.tokenFile != "":
		return nil, configErr("both MP_TOKEN and POOLWORKER_TOKEN_FILE are set: unset one")
	}
	if !useFile {
		if r.token == "" {
			return nil, configErr("no token is set: anyone who can connect, on this machine or (off loopback) from others, "+
				"could run programs as this user. Put a shared secret in a file for -token-file (or in MP_TOKEN), "+
				"and give drivers the same MP_TOKEN; %s", token.HowToMake)
		}
		return []byte(r.token), nil
	}
	b, err := os.ReadFile(r.tokenFile)
	if err != nil {
		return nil, configErr("-token-file: %v", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return nil, configErr("-token-file %s is empty: put the shared token in it", r.tokenFile)
	}
	return []byte(tok), nil
}

// checkListen checks the form of the listen address. Whether the token is
// strong enough for it is decided once it is bound (checkBound).
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return configErr("-listen %q: want host:port, e.g. 127.0.0.1:7450 or :7450 (%v)", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return configErr("-listen %q: bad port %q", addr, port)
	}
	return nil
}

// checkBound refuses a token under token.MinBits on addr, an address
// actually bound or dialled, unless it is loopback: a name that resolves
// elsewhere (a hosts file mapping localhost to another address) does not
// pass for loopback. flag names the flag that gave the address.
func checkBound(addr net.Addr, tok []byte, flag string) error {
	if token.IsLoopback(addr) {
		return nil
	}
	if err := token.Check(string(tok), "-token-file, MP_TOKEN or -token", flag+" "+addr.String()); err != nil {
		return configErr("%v", err)
	}
	return nil
}

// cacheDir returns dir, or the default cache directory if dir is empty:
// $XDG_CACHE_HOME/mp/poolworker, or the system's user cache directory.
func cacheDir(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		var err error
		if base, err = os.UserCacheDir(); err != nil {
			return "", configErr("no cache directory (%v): set -cache-dir", err)
		}
	}
	return filepath.Join(base, "mp", "poolworker"), nil
}

// parseSize parses a byte count: digits, optionally followed by KiB, MiB or
// GiB (or K, M, G, with the same binary meaning).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return 0, errors.New("want a positive number of bytes, e.g. 1073741824 or 1GiB")
	}
	if n > (1<<62)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// newLogger returns the logger cfg asks for, writing to w.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
