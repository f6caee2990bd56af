module github.com/mpgo/mp

go 1.26.8
