package a

func f(x int) int { return x + x }

var y = f(1)
