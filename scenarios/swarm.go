package scenarios

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pkg/errors"

	"github.com/seqlab/seqlab/nemesis"
	"github.com/seqlab/seqlab/simnet/sim"
)

// Swarm testing, as FoundationDB and TigerBeetle do it: each seed also
// draws the run's shape. Options.Swarm says from what.
const (
	// SwarmScenario draws from the scenario's own faults.
	SwarmScenario = "scenario"
	// SwarmAll draws from every registered fault.
	SwarmAll = "all"
)

// SwarmDraw is what a seed drew: recorded in plan.json beside the plan it
// made, so that a reader sees the shape of a run that failed. Replay and
// shrink need only the plan.
type SwarmDraw struct {
	From      string   `json:"from"` // SwarmScenario or SwarmAll
	Faults    []string `json:"faults"`
	InTurn    bool     `json:"in_turn"`
	Interval  float64  `json:"interval_x"` // times the scenario's
	Duration  float64  `json:"duration_x"` // times the scenario's
	Clients   int      `json:"clients"`    // range clients
	IDClients int      `json:"id_clients"` // ID clients
	Rate      float64  `json:"rate_x"`     // times the scenario's
}

// swarm redraws p's faults and workload from seed: a random subset of the
// faults (each kept with probability one half, at least one), how often
// they come and how long they stay (a quarter to twice the scenario's),
// whether in turn, and the client mix (one to twice the range clients, up
// to twice the ID clients, half to twice the rate).
func swarm(sc Scenario, seed int64, p SimPlan, from string) (SimPlan, error) {
	var pool []string
	switch from {
	case SwarmScenario:
		pool = slices.Clone(sc.Faults)
	case SwarmAll:
		pool = nemesis.Names()
	default:
		return p, errors.Errorf("swarm %q: want %s or %s", from, SwarmScenario, SwarmAll)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x737761726d))
	scales := []float64{0.25, 0.5, 1, 2}
	d := &SwarmDraw{From: from, InTurn: rng.IntN(2) == 0,
		Interval: scales[rng.IntN(len(scales))], Duration: scales[rng.IntN(len(scales))]}
	for _, f := range pool {
		if rng.IntN(2) == 0 {
			d.Faults = append(d.Faults, f)
		}
	}
	if len(d.Faults) == 0 && len(pool) > 0 {
		d.Faults = []string{pool[rng.IntN(len(pool))]}
	}
	w := sc.Workload
	d.Clients = 1 + rng.IntN(max(2*w.RangeClients, 1))
	d.IDClients = rng.IntN(2*w.IDClients + 1)
	d.Clients = min(d.Clients, MaxClients-d.IDClients)
	d.Rate = []float64{0.5, 1, 2}[rng.IntN(3)]

	p.Clients, p.IDClients = d.Clients, d.IDClients
	p.Rate = w.Rate * d.Rate
	interval := time.Duration(float64(sc.Interval) * d.Interval)
	p.Faults = sim.Plan(seed, sim.Schedule{Faults: d.Faults, Interval: interval,
		Duration: time.Duration(float64(sc.FaultFor) * d.Duration), Jitter: interval / 2, InTurn: d.InTurn},
		sc.TimeLimit-sc.Recovery)
	p.Swarm = d
	return p, p.Validate()
}
