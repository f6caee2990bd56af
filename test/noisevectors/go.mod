module github.com/mpgo/mp/test/noisevectors

go 1.25.0

require (
	github.com/flynn/noise v1.1.0
	github.com/mpgo/mp v0.0.0
)

require (
	golang.org/x/crypto v0.0.0-20210322153248-0c34fe9e7dc2 // indirect
	golang.org/x/sys v0.47.0 // indirect
)

replace github.com/mpgo/mp => ../..
