package a

// x x x in a comment do not count
func g(x int) int { return f(x) }
