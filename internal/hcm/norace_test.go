//go:build !race

package hcm

const raceEnabled = false
