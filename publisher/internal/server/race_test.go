//go:build race

package server

// raceEnabled: the race detector doubles the runtime's stack guards, so
// stacks are larger than in a normal build.
const raceEnabled = true
