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
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
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
	log := newLogger(cfg, stderr)
	if err := prepareCache(cfg.cacheDir, log); err != nil {
		fmt.Fprintf(stderr, "poolworker: %v\n", err)
		return 2
	}
	if cfg.connect != "" {
		if len(cfg.token) == 0 {
			log.Warn("no token set: any program on this machine that listens on the driver's address can run code as this user through poolworker; set -token-file or MP_TOKEN")
		}
		return connectUntilSignal(newServer(cfg, log), cfg)
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		log.Error("cannot listen", "err", err)
		return 1
	}
	if len(cfg.token) == 0 {
		log.Warn("no token set: any program on this machine can run code as this user through poolworker; set -token-file or MP_TOKEN")
	}
	srv := newServer(cfg, log)
	log.Info("listening", "addr", ln.Addr().String(), "capacity", cfg.capacity, "cache_dir", cfg.cacheDir,
		"node", runtime.GOOS+"/"+runtime.GOARCH, "pid", os.Getpid())
	return serveUntilSignal(srv, ln, cfg)
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
	ctx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
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
	return 0
}

// usageText introduces poolworker; the flags follow it.
const usageText = `poolworker is a node of an mp cluster: it runs the worker processes of
programs that use github.com/mpgo/mp/pool/cluster, Go's multiprocessing.Pool.

A program (the driver) started with MP_ADDRESS=host:port,... and MP_TOKEN=secret
connects to each poolworker listed and sends it the program's own executable
(once: a node caches it by SHA-256 in -cache-dir). The poolworker starts it as
a worker process that runs the driver's chunks. Nothing but poolworker is
installed on a node; programs must be built for the node's system (this one
is %s).

Example: two nodes on this machine, and the π example using them:

    export MP_TOKEN=$(head -c 32 /dev/urandom | base64)    # any shared secret
    poolworker -listen 127.0.0.1:7450 -capacity 2 &
    poolworker -listen 127.0.0.1:7451 -capacity 2 &
    MP_ADDRESS=127.0.0.1:7450,127.0.0.1:7451 go run ./examples/approximate_pi/cluster

To serve other machines, listen on a reachable address (-listen :7450); a
token is then required. The token is the only protection: anyone holding it
can run programs as poolworker's user. Use a private network.

Per-job clusters turn this around: the driver listens (MP_LISTEN=host:port) and
each poolworker started with -connect host:port dials it, retrying until it is
there, and serves it; it dials again whenever its worker process ends. The
driver is authenticated before anything else, in both modes.

SIGTERM or SIGINT drains: poolworker stops accepting drivers, asks its worker
processes to finish the chunks they hold (drivers send the rest elsewhere),
waits up to -drain-timeout, kills those left, and exits 0.

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
		if f.DefValue != "" && f.DefValue != "0" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, " [$%s]\n", env[f.Name])
	})
}
