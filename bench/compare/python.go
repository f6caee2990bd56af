package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// pythonScripts finds bench/python: under the working directory (go run
// ./compare from bench/), or next to this source file.
func pythonScripts() (string, error) {
	cands := []string{"python", filepath.Join("bench", "python")}
	if _, file, _, ok := runtime.Caller(0); ok {
		cands = append(cands, filepath.Join(filepath.Dir(file), "..", "python"))
	}
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, "pi_pool.py")); err == nil {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("cannot find bench/python (tried %s)", strings.Join(cands, ", "))
}

// runPython runs one of the scripts and decodes the JSON line it prints
// last.
func runPython(py, dir, script string, args ...int) (map[string]any, error) {
	argv := []string{filepath.Join(dir, script)}
	for _, a := range args {
		argv = append(argv, strconv.Itoa(a))
	}
	cmd := exec.Command(py, argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", py, script, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		return nil, fmt.Errorf("%s %s: cannot parse its output %q: %v", py, script, out, err)
	}
	return m, nil
}

func num(m map[string]any, k string) (float64, error) {
	v, ok := m[k].(float64)
	if !ok {
		return 0, fmt.Errorf("python output has no number %q: %v", k, m)
	}
	return v, nil
}
