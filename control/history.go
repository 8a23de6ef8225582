package control

import (
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/history"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// historyEvery is how often the sampler looks at every address's state. The history
// endpoint looks too before it answers, so the page never shows a stale state; the sampler
// keeps the timeline when nobody reads.
const historyEvery = time.Second

// sampleHistory is the block's history sampler: it notes its addresses' states every
// historyEvery until Stop.
func (b *Block) sampleHistory() {
	defer b.wg.Done()
	t := time.NewTicker(historyEvery)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
			b.observeHistory()
		}
	}
}

// observeHistory notes the state of every address of the block: a pass over atomics,
// ~10,000 addresses in well under a millisecond.
func (b *Block) observeHistory() {
	cs := b.snap.Load()
	if cs == nil {
		return
	}
	p := history.Default.Begin(time.Now())
	defer p.End()
	for _, pool := range cs.Pools {
		for _, a := range pool.Addrs {
			p.Note(pool.Name, a.Text, addrState(a))
		}
	}
}

// addrState is what the query path makes of a: answered, or why not.
func addrState(a *policy.Address) history.State {
	switch {
	case a.Up():
		return history.Up
	case a.Disabled:
		return history.Disabled
	case a.Mode.Get() == policy.ModeDown, a.Health == nil || a.Health.Healthy():
		return history.Drained // taken out by an override, not by its health
	}
	return history.Down
}

// poolAnswersOf returns the answer counters of a snapshot's pools, from the process's
// history (so they outlive the snapshot).
func poolAnswersOf(pools []*policy.Pool) map[*policy.Pool]*history.Answers {
	m := make(map[*policy.Pool]*history.Answers, len(pools))
	for _, p := range pools {
		m[p] = history.Default.AnswersOf(p.Name)
	}
	return m
}

// History implements api.Historian: the last hour of this block's pools and addresses.
func (b *Block) History() api.HistoryDoc {
	b.observeHistory()
	now := time.Now()
	start := time.Unix(history.Start(now.Unix()), 0).UTC()
	doc := api.HistoryDoc{
		Time: now.UTC(), Start: start, BucketSeconds: history.BucketSeconds, Pools: []api.PoolHistoryDoc{},
	}
	cs := b.snap.Load()
	if cs == nil {
		return doc
	}
	for _, p := range cs.Pools {
		pd := api.PoolHistoryDoc{Name: p.Name, Answers: cs.poolAnswers[p].Counts(now.Unix()), Addresses: []api.AddressHistoryDoc{}}
		for _, a := range p.Addrs {
			ad := api.AddressHistoryDoc{Address: a.Text, States: []api.StateDoc{}}
			for _, c := range history.Default.Timeline(p.Name, a.Text, start) {
				ad.States = append(ad.States, api.StateDoc{At: c.At.UTC(), State: c.State.String()})
			}
			pd.Addresses = append(pd.Addresses, ad)
		}
		doc.Pools = append(doc.Pools, pd)
	}
	return doc
}
