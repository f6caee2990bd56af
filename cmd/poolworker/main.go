//go:build unix

// Command poolworker is a node of an mp cluster: it runs the worker
// processes of cluster pools (package github.com/mpgo/mp/pool/cluster) whose
// drivers connect to it. Run poolworker -h for how to use it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/token"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is poolworker: it parses args (and the environment through getenv),
// serves until SIGTERM or SIGINT, drains, and returns the exit code: 0, 2
// for a configuration error, 1 for any other failure to start.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, fs, err := parseConfig(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout, fs)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "poolworker: %v\nRun poolworker -h for help.\n", err)
		return 2
	}
	if cfg.version {
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	if cfg.newToken {
		fmt.Fprintln(stdout, token.New())
		return 0
	}
	log := newLogger(cfg, stderr)
	if err := prepareCache(cfg.cacheDir, log); err != nil {
		fmt.Fprintf(stderr, "poolworker: %v\n", err)
		return 2
	}
	srv := newServer(cfg, log)
	var ln net.Listener
	attrs := []any{"capacity", cfg.capacity, "cache_dir", cfg.cacheDir,
		"cache_max", cfg.cacheMax, "node", runtime.GOOS + "/" + runtime.GOARCH, "pid", os.Getpid()}
	if cfg.connect == "" { // with -connect, it dials the driver instead
		if ln, err = net.Listen("tcp", cfg.listen); err != nil {
			log.Error("cannot listen", "err", err)
			return 1
		}
		if err := checkBound(ln.Addr(), cfg.token, "-listen"); err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "poolworker: %v\n", err)
			return 2
		}
		attrs = append([]any{"addr", ln.Addr().String()}, attrs...)
	}
	if cfg.metrics != "" {
		mln, err := net.Listen("tcp", cfg.metrics)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			log.Error("cannot listen for metrics (-metrics-listen)", "err", err)
			return 1
		}
		ops := &http.Server{Handler: srv.opsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go ops.Serve(mln)
		defer ops.Close() // after the drain, so that probes see /readyz fail meanwhile
		attrs = append(attrs, "metrics", mln.Addr().String())
	}
	switch {
	case os.Geteuid() == 0 && cfg.user == nil:
		log.Warn("running as root: every driver holding the token runs code as root here; run poolworker as an unprivileged user, or give -user NAME to run worker processes as one")
	case cfg.user != nil && cfg.user.uid == 0:
		log.Warn("-user is root: worker processes run as root")
	}
	if cfg.user != nil {
		attrs = append(attrs, "user", cfg.user.name)
	}
	if cfg.tokenFlag {
		log.Warn("-token is deprecated: its value shows in ps to every user of this machine; use -token-file or MP_TOKEN")
	}
	srv.evict()
	if cfg.connect != "" {
		log.Info("dialling the driver", append([]any{"driver", cfg.connect}, attrs...)...)
		return connectUntilSignal(srv, cfg)
	}
	log.Info("listening", attrs...)
	return serveUntilSignal(srv, ln, cfg)
}

// versionLine describes this build of poolworker: its module version (a
// tag, or a pseudo-version from the checkout it was built in), the commit
// if known, and the Go version and system.
func versionLine() string {
	version, commit, modified := "unknown", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := "poolworker " + version
	if commit != "" {
		line += " commit " + commit
		if modified {
			line += " (modified)"
		}
	}
	return line + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// drain shuts srv down, giving worker processes up to d to finish; a
// signal on sig cuts the wait short.
func drain(srv *server, d time.Duration, sig <-chan os.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	go func() {
		select {
		case s := <-sig:
			srv.log.Warn("second signal: not waiting for worker processes", "signal", s.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	srv.Shutdown(ctx)
}

// serveUntilSignal serves on ln until SIGTERM or SIGINT, then shuts srv
// down, giving worker processes cfg.drainTimeout to finish; a second signal
// cuts the wait short.
func serveUntilSignal(srv *server, ln net.Listener, cfg config) int {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case s := <-sig:
		srv.log.Info("signal received: draining", "signal", s.String(), "drain_timeout", cfg.drainTimeout)
	case err := <-served:
		srv.log.Error("listener failed", "err", err)
		ctx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		return 1
	}
	drain(srv, cfg.drainTimeout, sig)
	return 0
}

// usageText introduces poolworker; the flags follow it.
const usageText = `poolworker is a node of an mp cluster: it runs the worker processes of
programs that use github.com/mpgo/mp/pool/cluster, Go's multiprocessing.Pool.

A program (the driver) started with MP_ADDRESS=host:port,... and MP_TOKEN=<token>
connects to each poolworker listed and sends it the program's own executable
(once: a node caches it by SHA-256 in -cache-dir, up to -cache-max bytes). The
poolworker starts it as a worker process that runs the driver's chunks.
Nothing but poolworker is installed on a node; programs must be built for the
node's system (this one is %s), and without cgo unless the node has the C
library they link (CGO_ENABLED=0 go build): poolworker refuses others, and the
driver's error says why.

Example: two nodes on this machine, and the π example using them:

    export MP_TOKEN=$(poolworker -new-token)    # 256 random bits
    poolworker -listen 127.0.0.1:7450 -capacity 2 &
    poolworker -listen 127.0.0.1:7451 -capacity 2 &
    MP_ADDRESS=127.0.0.1:7450,127.0.0.1:7451 go run ./examples/approximate_pi/cluster

A token is always required; to serve other machines (-listen :7450) it must
have at least 128 bits (32 hex digits, 22 base64 characters): make one with
-new-token and pass it in a file (-token-file) or in MP_TOKEN, never with
-token, which ps shows. Anyone holding it can run programs as poolworker's
user (or -user's).

Per-job clusters turn this around: the driver listens (MP_LISTEN=host:port) and
each poolworker started with -connect host:port dials it, retrying until it is
there, and serves it; it dials again whenever its worker process ends. The
driver is authenticated before anything else, in both modes.

SIGTERM or SIGINT drains: poolworker stops accepting drivers, asks its worker
processes to finish the chunks they hold (drivers send the rest elsewhere),
waits up to -drain-timeout, kills those left, and exits 0.

For operators, -metrics-listen :9450 serves /healthz (live: the process is not
stuck), /readyz (ready: it accepts drivers; 503 while draining) and /metrics
(Prometheus: sessions, worker processes, chunks and items run by outcome,
cache bytes, handshake failures by reason).

Usage: poolworker [flags]

Flags (a flag not given is read from the environment variable shown):
`

// usage writes the help text to w.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, usageText, runtime.GOOS+"/"+runtime.GOARCH)
	env := map[string]string{}
	for _, fe := range flagEnv {
		env[fe.flag] = fe.env
	}
	fs.VisitAll(func(f *flag.Flag) {
		name, text := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		text = strings.ReplaceAll(text, "\n", "\n    \t")
		fmt.Fprintf(w, "%s\n    \t%s", line, text)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		if env[f.Name] != "" {
			fmt.Fprintf(w, " [$%s]", env[f.Name])
		}
		fmt.Fprintln(w)
	})
}
