//go:build race

package http1

// sync.Pool drops items at random under the race detector, so allocation counts mean nothing.
const raceEnabled = true
