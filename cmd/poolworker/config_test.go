//go:build unix

package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseConfig accepts good settings from flags and the environment, and
// says what to fix in bad ones.
type env map[string]string

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("  from-file\n"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	cache := []string{"-cache-dir", dir}
	tok := env{"MP_TOKEN": testToken}

	tests := []struct {
		name    string
		args    []string
		env     env
		wantErr []string // substrings of the error; none: no error
		check   func(config) bool
	}{
		{"defaults", nil, tok, nil, func(c config) bool {
			return c.listen == defaultListen && c.capacity >= 1 && c.maxBinary == 1<<30 && string(c.token) == testToken && !c.tokenFlag
		}},
		// Issue 11: on loopback, an empty token let any local user run code
		// as poolworker's user. A token is required everywhere.
		{"loopback without token", []string{"-listen", "localhost:0"}, nil, []string{"no token", "-token-file", "MP_TOKEN", "-new-token"}, nil},
		{"IPv6 loopback without token", []string{"-listen", "[::1]:0"}, nil, []string{"-token-file", "MP_TOKEN"}, nil},
		{"all interfaces without token", []string{"-listen", ":7450"}, nil, []string{"-token-file", "MP_TOKEN", "-new-token"}, nil},
		{"-connect without token", []string{"-connect", "127.0.0.1:7460"}, nil, []string{"-token-file", "MP_TOKEN"}, nil},
		// Its length is checked against the address bound (TestWeakToken*).
		{"short token on loopback", []string{"-listen", "127.0.0.1:0"}, env{"MP_TOKEN": "s3cret"}, nil, nil},
		{"-token is deprecated but works", []string{"-token", "x"}, nil, nil,
			func(c config) bool { return string(c.token) == "x" && c.tokenFlag }},
		{"new-token skips the rest", []string{"-new-token", "-capacity", "0"}, nil, nil, func(c config) bool { return c.newToken }},
		{"all interfaces with MP_TOKEN", []string{"-listen", ":7450"}, env{"MP_TOKEN": "t"}, nil,
			func(c config) bool { return string(c.token) == "t" }},
		{"token file", []string{"-token-file", tokenFile}, nil, nil,
			func(c config) bool { return string(c.token) == "from-file" }},
		{"token file wins over MP_TOKEN", []string{"-token-file", tokenFile}, env{"MP_TOKEN": "t"}, nil,
			func(c config) bool { return string(c.token) == "from-file" }},
		{"-token wins over POOLWORKER_TOKEN_FILE", []string{"-token", "x"}, env{"POOLWORKER_TOKEN_FILE": tokenFile}, nil,
			func(c config) bool { return string(c.token) == "x" }},
		{"both token variables", nil, env{"MP_TOKEN": "t", "POOLWORKER_TOKEN_FILE": tokenFile}, []string{"MP_TOKEN", "POOLWORKER_TOKEN_FILE"}, nil},
		{"both token flags", []string{"-token", "x", "-token-file", tokenFile}, nil, []string{"-token", "-token-file"}, nil},
		{"empty token file", []string{"-token-file", emptyFile}, nil, []string{"-token-file", "empty"}, nil},
		{"missing token file", []string{"-token-file", filepath.Join(dir, "nope")}, nil, []string{"-token-file"}, nil},
		{"capacity 0", []string{"-capacity", "0"}, nil, []string{"-capacity"}, nil},
		{"capacity from env", nil, env{"POOLWORKER_CAPACITY": "7"}, nil, func(c config) bool { return c.capacity == 7 }},
		{"flag wins over env", []string{"-capacity", "5"}, env{"POOLWORKER_CAPACITY": "7"}, nil, func(c config) bool { return c.capacity == 5 }},
		{"bad env", nil, env{"POOLWORKER_CAPACITY": "many"}, []string{"POOLWORKER_CAPACITY", "-capacity"}, nil},
		{"listen from env", nil, env{"POOLWORKER_LISTEN": "127.0.0.1:9"}, nil, func(c config) bool { return c.listen == "127.0.0.1:9" }},
		{"listen without port", []string{"-listen", "localhost"}, nil, []string{"-listen", "host:port"}, nil},
		{"max-binary with unit", []string{"-max-binary", "64MiB"}, nil, nil, func(c config) bool { return c.maxBinary == 64<<20 }},
		{"max-binary in bytes", []string{"-max-binary", "1000"}, nil, nil, func(c config) bool { return c.maxBinary == 1000 }},
		{"max-binary 0", []string{"-max-binary", "0"}, nil, []string{"-max-binary"}, nil},
		{"log format", []string{"-log-format", "xml"}, nil, []string{"-log-format", "text or json"}, nil},
		{"log level", []string{"-log-level", "loud"}, nil, []string{"-log-level"}, nil},
		{"log level warn", []string{"-log-level", "WARN"}, nil, nil, nil},
		{"cache-max default", nil, nil, nil, func(c config) bool { return c.cacheMax == 2<<30 && c.metrics == "" }},
		{"cache-max from env", nil, env{"POOLWORKER_CACHE_MAX": "10G"}, nil, func(c config) bool { return c.cacheMax == 10<<30 }},
		{"cache-max 0", []string{"-cache-max", "0"}, nil, []string{"-cache-max"}, nil},
		{"metrics-listen", []string{"-metrics-listen", ":9450"}, nil, nil, func(c config) bool { return c.metrics == ":9450" }},
		{"metrics-listen from env", nil, env{"POOLWORKER_METRICS_LISTEN": "127.0.0.1:0"}, nil,
			func(c config) bool { return c.metrics == "127.0.0.1:0" }},
		{"metrics-listen without port", []string{"-metrics-listen", "localhost"}, nil, []string{"-metrics-listen", "host:port"}, nil},
		{"metrics-listen bad port", []string{"-metrics-listen", ":http-ish"}, nil, []string{"-metrics-listen", "port"}, nil},
		{"version skips the rest", []string{"-version", "-capacity", "0"}, nil, nil, func(c config) bool { return c.version }},
		{"negative drain timeout", []string{"-drain-timeout", "-1s"}, nil, []string{"-drain-timeout"}, nil},
		{"unknown flag", []string{"-capacit", "2"}, nil, []string{"-capacit"}, nil},
		{"argument", []string{"serve"}, nil, []string{"serve", "only flags"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "MP_TOKEN" && !strings.Contains(strings.ToLower(tt.name), "token") {
					return testToken // the cases about other settings
				}
				return tt.env[k]
			}
			cfg, _, err := parseConfig(append(append([]string{}, cache...), tt.args...), getenv)
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

// -h is not an error, and the help is not printed by the flag package.
func TestParseConfigHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		if _, _, err := parseConfig([]string{arg}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s: %v, want flag.ErrHelp", arg, err)
		}
	}
}

// The default cache directory follows XDG_CACHE_HOME.
func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	dir, err := cacheDir("")
	if err != nil || dir != "/x/cache/mp/poolworker" {
		t.Fatalf("cacheDir() = %q, %v", dir, err)
	}
}
