//go:build unix

package main

import (
	"context"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Backoff of -connect between attempts to reach the driver.
const (
	connectMinBackoff = 100 * time.Millisecond
	connectMaxBackoff = 5 * time.Second
)

// checkConnect checks the form of the -connect address. Whether the token
// is strong enough is decided for each address dialled (checkBound).
func checkConnect(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return configErr("-connect %q: want the driver's host:port (its MP_LISTEN), e.g. driver.example:7460", addr)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return configErr("-connect %q: bad port %q", addr, port)
	}
	return nil
}

// connectUntilSignal runs poolworker -connect: it dials the driver, serves
// it, and dials again whenever the worker process serving it ends, until
// SIGTERM or SIGINT; then it drains as a listening poolworker does.
func connectUntilSignal(srv *server, cfg config) int {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	looped := make(chan struct{})
	var loopErr error
	go func() {
		defer close(looped)
		loopErr = srv.connectLoop(cfg.connect, cfg.giveUpAfter)
	}()
	var s os.Signal
	select {
	case s = <-sig:
	case <-looped: // the driver stayed away for -give-up-after, or the token is too weak for it
		ctx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if loopErr != nil {
			srv.log.Error("stopped", "err", loopErr)
			return 2
		}
		return 0
	}
	srv.log.Info("signal received: draining", "signal", s.String(), "drain_timeout", cfg.drainTimeout)
	drain(srv, cfg.drainTimeout, sig)
	<-looped
	return 0
}

// connectLoop dials the driver at addr until the server shuts down. Each
// connection is served as an accepted one is (the driver is authenticated
// before anything else: it proves first), and the next dial waits until the
// worker process started for it has exited: a poolworker -connect serves
// one session at a time. With giveUp > 0 it returns once the driver has
// been unreachable for that long. It returns an error, without a
// handshake, if the address dialled is not loopback and the token is under
// 128 bits.
func (s *server) connectLoop(addr string, giveUp time.Duration) error {
	backoff := connectMinBackoff
	quiet := false // the driver's absence is logged once per absence
	lastSeen := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.done
		cancel()
	}()
	wait := func() bool {
		select {
		case <-s.done:
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, connectMaxBackoff)
		return true
	}
	for !s.isClosing() {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if !quiet {
				s.log.Info("the driver is not there; retrying with backoff", "driver", addr, "err", err)
				quiet = true
			}
			if giveUp > 0 && time.Since(lastSeen) > giveUp {
				s.log.Info("giving up: the driver has been unreachable for -give-up-after", "driver", addr, "give_up_after", giveUp)
				return nil
			}
			if !wait() {
				return nil
			}
			continue
		}
		quiet = false
		if err := checkBound(conn.RemoteAddr(), s.cfg.token, "-connect"); err != nil {
			conn.Close()
			return err
		}
		start := time.Now()
		s.log.Info("connected to the driver", "driver", addr, "local", conn.LocalAddr().String())
		s.accepted(conn)
		s.handlers.Wait()
		s.reapers.Wait()
		lastSeen = time.Now()
		if time.Since(start) > 10*time.Second {
			backoff = connectMinBackoff
		} else if !wait() { // refused, or a session that ended at once: not in a tight loop
			return nil
		}
	}
	return nil
}
