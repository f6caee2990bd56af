package wire

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Ready.Check and Config.Check refuse each number out of range, naming the
// field; the values are those of issue 11 and their neighbours.
func TestChecks(t *testing.T) {
	ok := Ready{Capacity: 1, Host: "node-a"}
	readies := []struct {
		r     Ready
		field string // "" if valid
	}{
		{ok, ""},
		{Ready{Capacity: MaxCapacity, Host: strings.Repeat("h", MaxHost)}, ""},
		{Ready{Capacity: 0}, "Ready.Capacity"},
		{Ready{Capacity: -1}, "Ready.Capacity"},
		{Ready{Capacity: MaxCapacity + 1}, "Ready.Capacity"},
		{Ready{Capacity: 1 << 40}, "Ready.Capacity"},
		{Ready{Capacity: 1 << 61}, "Ready.Capacity"},
		{Ready{Capacity: 1 << 62}, "Ready.Capacity"},
		{Ready{Capacity: math.MaxInt64}, "Ready.Capacity"},
		{Ready{Capacity: math.MinInt64}, "Ready.Capacity"},
		{Ready{Capacity: 1, Host: strings.Repeat("h", MaxHost+1)}, "Ready.Host"},
	}
	for _, tt := range readies {
		check(t, tt.r.Check(), tt.field)
	}
	configs := []struct {
		c     Config
		field string
	}{
		{Config{}, ""},
		{Config{MaxTasks: 10, HeartbeatMillis: 1000, WriteTimeoutMilli: 2000, MaxFrame: 1 << 10}, ""},
		{Config{MaxTasks: -1}, "Config.MaxTasks"},
		{Config{HeartbeatMillis: -1}, "Config.HeartbeatMillis"},
		{Config{WriteTimeoutMilli: math.MinInt64}, "Config.WriteTimeoutMilli"},
		{Config{MaxFrame: -1}, "Config.MaxFrame"},
		{Config{MaxFrame: 1}, "Config.MaxFrame"},
	}
	for _, tt := range configs {
		check(t, tt.c.Check(), tt.field)
	}
}

func check(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Errorf("refused a valid message: %v", err)
		}
		return
	}
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), field) {
		t.Errorf("got %v, want ErrMalformed naming %s", err, field)
	}
}
