//go:build unix

package main

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The -connect settings: checked as -listen is, and only with -connect.
func TestParseConnectConfig(t *testing.T) {
	cache := []string{"-cache-dir", filepath.Join(t.TempDir(), "cache")}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string
		check   func(config) bool
	}{
		{"loopback", []string{"-connect", "127.0.0.1:7460"}, map[string]string{"MP_TOKEN": testToken}, nil,
			func(c config) bool { return c.connect == "127.0.0.1:7460" && c.giveUpAfter == 0 }},
		{"from the environment", nil, map[string]string{"POOLWORKER_CONNECT": "driver:7460", "MP_TOKEN": "t", "POOLWORKER_GIVE_UP_AFTER": "1m"}, nil,
			func(c config) bool { return c.connect == "driver:7460" && c.giveUpAfter == time.Minute }},
		{"another host without token", []string{"-connect", "driver:7460"}, nil, []string{"-token-file", "MP_TOKEN"}, nil},
		{"no port", []string{"-connect", "driver", "-token", "t"}, nil, []string{"-connect", "host:port"}, nil},
		{"no host", []string{"-connect", ":7460", "-token", "t"}, nil, []string{"-connect", "host:port"}, nil},
		{"with -listen", []string{"-connect", "127.0.0.1:7460", "-listen", "127.0.0.1:0", "-token", "t"}, nil, []string{"-listen", "-connect"}, nil},
		{"give-up-after without -connect", []string{"-give-up-after", "1m", "-token", "t"}, nil, []string{"-give-up-after", "-connect"}, nil},
		{"negative give-up-after", []string{"-connect", "127.0.0.1:7460", "-give-up-after", "-1s", "-token", "t"}, nil, []string{"-give-up-after"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parseConfig(append(append([]string{}, cache...), tt.args...), func(k string) string { return tt.env[k] })
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("parseConfig: %v", err)
				}
				if tt.check != nil && !tt.check(cfg) {
					t.Fatalf("parseConfig gave %+v", cfg)
				}
				return
			}
			if !errors.Is(err, errConfig) {
				t.Fatalf("parseConfig: %v, want a configuration error", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// With -give-up-after, a poolworker -connect whose driver never comes
// exits 0 and says why.
func TestConnectGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	var stdout, stderr bytes.Buffer
	code := run([]string{"-connect", addr, "-give-up-after", "300ms", "-cache-dir", filepath.Join(t.TempDir(), "cache")},
		func(k string) string { return map[string]string{"MP_TOKEN": testToken}[k] }, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "giving up") {
		t.Errorf("the log does not say it gave up:\n%s", stderr.String())
	}
}
