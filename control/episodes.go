package control

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// What the query path notices about a route, as bits of its episode.
const (
	bitFailover      uint32 = 1 << iota // the route answers from another pool
	bitFailOpen                         // no pool available: failing open
	bitFallbackBegin                    // no pool available: the domain's fallback answers
	bitFallbackEnd                      // a pool is available again
)

// episode is what the query path noticed on one route (or one pinned domain) since the
// block's reporter last looked: bits, and the pools they happened with. The query path sets
// them with atomics and, when the bits were clear, pushes the episode on its block's queue;
// the reporter takes the whole queue, clears the bits and tells (log line, event, webhooks).
type episode struct {
	d        *policy.Domain
	r        *policy.Route // nil: a pinned domain
	bits     atomic.Uint32
	failover atomic.Pointer[policy.Pool]
	failopen atomic.Pointer[policy.Pool]
	fallback atomic.Pointer[policy.Pool]
	kind     atomic.Uint32 // the policy.FallbackKind of the last fallback that began
	next     atomic.Pointer[episode]

	failOpenAt time.Time // the reporter's: when it last told this route's fail-open
}

// episodeQueue is a block's list of episodes with news, pushed lock-free by the query path.
// wake (capacity 1) tells the reporter when the queue turns non-empty: the only
// synchronisation an answer does beyond atomics, and only the first answer of an episode
// (later answers find the bit set, or the queue non-empty), so events follow at once.
type episodeQueue struct {
	head atomic.Pointer[episode]
	wake chan struct{}
}

// note sets bit on e, and queues e when it had no news yet. A nil queue (a static block)
// queues nothing.
func (q *episodeQueue) note(e *episode, bit uint32) {
	if e.bits.Or(bit) != 0 || q == nil {
		return // queued already: the reporter sees the new bit with the others
	}
	for {
		h := q.head.Load()
		e.next.Store(h)
		if q.head.CompareAndSwap(h, e) {
			if h == nil && q.wake != nil {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return
		}
	}
}

// take empties the queue and returns its episodes, oldest first.
func (q *episodeQueue) take() []*episode {
	var out []*episode
	for e := q.head.Swap(nil); e != nil; {
		next := e.next.Load() // before the bits are cleared: then e may be queued again
		out = append(out, e)
		e = next
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// reportEvery is how often the reporter looks at the queue without being woken (a
// backstop).
const reportEvery = time.Second

// failOpenLogEvery bounds how often one route tells that it fails open.
const failOpenLogEvery = 30 * time.Second

// reportEpisodes is the block's reporter: it turns the episodes the query path noticed into
// log lines, events and webhook deliveries, until Stop.
func (b *Block) reportEpisodes() {
	defer b.wg.Done()
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			b.tellEpisodes(time.Now()) // what the last answers noticed
			return
		case now := <-t.C:
			b.tellEpisodes(now)
		case <-b.episodes.wake:
			b.tellEpisodes(time.Now())
		}
	}
}

func (b *Block) tellEpisodes(now time.Time) {
	for _, e := range b.episodes.take() {
		bits := e.bits.Swap(0)
		if bits&bitFailover != 0 {
			noteFailover(e.d, e.r, e.failover.Load())
		}
		if bits&bitFailOpen != 0 && now.Sub(e.failOpenAt) > failOpenLogEvery {
			e.failOpenAt = now
			noteFailOpen(e.d, e.r, e.failopen.Load())
		}
		begin, end := bits&bitFallbackBegin != 0, bits&bitFallbackEnd != 0
		switch {
		case begin && end && e.r != nil && e.r.InEpisode():
			noteFallback(e, false) // ended, then began again: in one now
			noteFallback(e, true)
		case begin && end:
			noteFallback(e, true)
			noteFallback(e, false)
		case begin:
			noteFallback(e, true)
		case end:
			noteFallback(e, false)
		}
	}
}

// noteFallback logs and records that a route's fallback episode began or ended.
func noteFallback(e *episode, began bool) {
	d, pool := e.d, ""
	if p := e.fallback.Load(); p != nil {
		pool = p.Name
	}
	var msg string
	if began {
		what := "fallback " + policy.FallbackKind(e.kind.Load()).String()
		if pool != "" {
			what += " (pool " + pool + ", its health ignored)"
		}
		msg = fmt.Sprintf("domain %s route %s: no pool available, answering with %s", d.Name, e.r.Selector.Text, what)
		log.Warningf("%s", msg)
	} else {
		msg = fmt.Sprintf("domain %s route %s: a pool is available again (pool %s), fallback %s ended", d.Name, e.r.Selector.Text, pool, d.Fallback)
		log.Infof("%s", msg)
	}
	record(api.Event{Kind: "fallback", Domain: d.Name, Pool: pool, Message: msg})
}
