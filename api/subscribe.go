package api

import (
	"sync"
	"sync/atomic"
)

// subscribers are the functions each Events ring passes its new events to (webhooks).
var subscribers sync.Map // *Events -> *atomic.Pointer[[]func(Event)]

// Subscribe has fn called with every event added to ev from now on, in id order. fn runs on
// the adding goroutine, inside Add: it must return at once (hand the event to a queue
// without waiting) and must not add events.
func (ev *Events) Subscribe(fn func(Event)) {
	v, _ := subscribers.LoadOrStore(ev, new(atomic.Pointer[[]func(Event)]))
	p := v.(*atomic.Pointer[[]func(Event)])
	for {
		old := p.Load()
		var fns []func(Event)
		if old != nil {
			fns = append(fns, *old...)
		}
		fns = append(fns, fn)
		if p.CompareAndSwap(old, &fns) {
			return
		}
	}
}

// notify passes e to ev's subscribers.
func (ev *Events) notify(e Event) {
	v, ok := subscribers.Load(ev)
	if !ok {
		return
	}
	if fns := v.(*atomic.Pointer[[]func(Event)]).Load(); fns != nil {
		for _, fn := range *fns {
			fn(e)
		}
	}
}
