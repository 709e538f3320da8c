package dedupe

// prefetch asks the CPU to start loading the cache line at addr. It never
// faults and changes nothing the program can observe.
//
//go:noescape
func prefetch(addr uintptr)
