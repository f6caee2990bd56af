//go:build !unix

package cluster

import (
	"errors"
	"os"
)

// redirectOutput is not supported here: a worker process's output stays
// where its poolworker put it.
func redirectOutput() (r *os.File, restore func(), orig *os.File, err error) {
	return nil, nil, nil, errors.New("not supported")
}
