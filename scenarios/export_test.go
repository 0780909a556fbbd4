package scenarios

// SimulateSeed is simulateSeed, a hunt's run of one seed, for the tests
// to hold it to Simulate's.
var SimulateSeed = simulateSeed

// RaiseGC is raiseGC, a hunt's GC settings.
var RaiseGC = raiseGC
