package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"
)

// target is one address to dial, and the name it was resolved from ("" for
// a literal IP address).
type target struct {
	addr   string
	origin string
}

// resolveTimeout bounds one name's lookup.
const resolveTimeout = 5 * time.Second

// resolve returns the addresses entry (host:port) stands for: itself if host
// is an IP address, else one per address the name resolves to (its IPv4
// addresses if it has any, else its IPv6 ones). A name that
// does not exist, or has no address, gives none and an error wrapping
// errNoAddress.
func resolve(ctx context.Context, entry string) ([]string, error) {
	host, port, err := net.SplitHostPort(entry)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) != nil {
		return []string{entry}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound || err == nil && len(ips) == 0 {
		return nil, fmt.Errorf("%s: %w (%v)", entry, errNoAddress, err)
	}
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", entry, err)
	}
	// One family: a dual-stack name (localhost; a pod with an A and an
	// AAAA record) would otherwise list each node twice.
	v4 := slices.ContainsFunc(ips, func(ip string) bool { return net.ParseIP(ip).To4() != nil })
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		if !v4 || net.ParseIP(ip).To4() != nil {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// errNoAddress is wrapped by the error of a name that resolves to nothing.
var errNoAddress = errors.New("the name does not resolve to any address")

// resolveAll resolves every entry. It returns the targets, the entries that
// are names (to be resolved again), and one error per name that failed.
func resolveAll(entries []string) (targets []target, names []string, errs []error) {
	seen := map[string]bool{}
	for _, e := range entries {
		host, _, _ := net.SplitHostPort(e)
		origin := ""
		if net.ParseIP(host) == nil {
			origin = e
			names = append(names, e)
		}
		addrs, err := resolve(context.Background(), e)
		if err != nil {
			errs = append(errs, err)
		}
		for _, a := range addrs {
			if !seen[a] {
				seen[a] = true
				targets = append(targets, target{a, origin})
			}
		}
	}
	return targets, names, errs
}

// resolveLoop resolves names again every ResolveEvery until the pool stops:
// new addresses join as members, and the members of addresses a name no
// longer lists are drained. A lookup that fails for another reason than
// "no such name" changes nothing.
func (p *driver) resolveLoop(names []string) {
	defer p.wg.Done()
	t := time.NewTicker(p.s.resolveEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		for _, name := range names {
			p.reresolve(name)
		}
	}
}

// reresolve brings the members that came from name in line with what it
// resolves to now.
func (p *driver) reresolve(name string) {
	addrs, err := resolve(context.Background(), name)
	if err != nil && !errors.Is(err, errNoAddress) {
		p.logf(slog.LevelWarn, "resolving a name failed; its members stay as they are", "name", name, "cause", err)
		return
	}
	for _, a := range p.members.addrs(name) {
		if !slices.Contains(addrs, a) {
			p.members.drain(a)
		}
	}
	for _, a := range addrs {
		m := &member{name: a, addr: a, origin: name}
		if p.members.add(m, nil) {
			p.logf(slog.LevelInfo, "worker found", "worker", a, "name", name)
		}
	}
}
