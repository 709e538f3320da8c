//go:build race

package simulate

// raceEnabled scales the high-rate test down to what the race detector allows.
const raceEnabled = true
