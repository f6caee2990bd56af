//go:build unix

package main

import (
	"net"
	"time"
)

// Connections awaiting their handshake are bounded in total and per source
// address (internal/admit), leaving descriptors for what authenticated
// drivers need (uploads, the pipes and descriptors of each worker process
// started). Without the bound, 1,100 idle connections against a limit of
// 1,024 descriptors made poolworker fail in dup and fork for 7 of 8
// legitimate drivers (issue 11). Each connection's handshake also ends
// within wire.DefaultHandshakeTimeout.

// admit records conn as not yet handed over and awaiting its handshake,
// and reports false if its source already has too many such connections.
// Over the total, it closes the connection that has waited longest. s.mu
// must be held.
func (s *server) admit(conn net.Conn) bool {
	ok, shed := s.gate.Admit(conn)
	if !ok {
		return false
	}
	if shed != nil {
		shed.Close() // its handler's handshake fails, and it releases it
		s.metrics.handshakeShed()
		if now := time.Now(); now.Sub(s.shedWarned) > time.Minute {
			s.shedWarned = now
			s.log.Warn("too many connections awaiting their handshake: closing the oldest as new ones come (a flood? see mp_poolworker_handshake_failures_total{reason=\"shed\"})",
				"limit", s.gate.TotalLimit(), "per_address", s.gate.PerSourceLimit())
		}
	}
	s.pending[conn] = struct{}{}
	return true
}
