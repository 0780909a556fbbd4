package rrsim

// KeepRecycled makes s hold on to no message the simulator hands back,
// so that the simulator's check sees any later use of one.
func KeepRecycled(s *System) { s.noReuse = true }
