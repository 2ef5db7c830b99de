//go:build !race

package main

// raceEnabled reports a build with the race detector, which slows every call ~10x.
const raceEnabled = false
