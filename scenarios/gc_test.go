package scenarios_test

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/seqlab/seqlab/scenarios"
)

// TestHuntGCSettings: a hunt raises GOGC and sets a memory limit while it
// runs, leaves a higher GOGC or a limit already set alone, and puts back
// what was there once the last hunt ends.
func TestHuntGCSettings(t *testing.T) {
	prev := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer func() {
		debug.SetGCPercent(prev)
		debug.SetMemoryLimit(prevLimit)
	}()

	restore := scenarios.RaiseGC()
	inner := scenarios.RaiseGC() // a second hunt at once
	assert.Equal(t, scenarios.HuntGCPercent, debug.SetGCPercent(scenarios.HuntGCPercent))
	assert.Equal(t, int64(scenarios.HuntMemoryLimit), debug.SetMemoryLimit(-1))
	inner()
	assert.Equal(t, scenarios.HuntGCPercent, debug.SetGCPercent(scenarios.HuntGCPercent), "a hunt still runs")
	restore()
	assert.Equal(t, 100, debug.SetGCPercent(100))
	assert.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(-1))

	debug.SetGCPercent(5000)
	debug.SetMemoryLimit(256 << 20)
	restore = scenarios.RaiseGC()
	assert.Equal(t, 5000, debug.SetGCPercent(5000), "a higher GOGC stays")
	assert.Equal(t, int64(256<<20), debug.SetMemoryLimit(-1), "a limit set stays")
	restore()
}
