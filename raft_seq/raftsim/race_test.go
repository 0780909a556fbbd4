//go:build race

package raftsim_test

// raceEnabled: the race detector slows the simulator five to tenfold, so
// the sweeps run fewer seeds under it.
const raceEnabled = true
