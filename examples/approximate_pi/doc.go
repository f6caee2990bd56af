// Package approximatepi holds three programs that approximate π by sampling
// random points, after the Python article on multiprocessing:
//
//   - serial runs the batches of samples one after the other;
//   - parallel runs them on a local pool (package pool/local), one goroutine
//     worker per CPU;
//   - cluster runs them on worker processes (package pool/cluster).
//
// parallel/main.go and cluster/main.go differ in one line, the import of
// the backend; this package's test checks it. Run, for example:
//
//	go run ./examples/approximate_pi/serial
//	go run ./examples/approximate_pi/parallel
//	go run ./examples/approximate_pi/cluster
package approximatepi
