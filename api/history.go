package api

import (
	"net/http"
	"time"
)

// Historian is a Control that keeps the last hour (GET /api/v1/history).
type Historian interface {
	History() HistoryDoc
}

// HistoryDoc is the body of GET /api/v1/history: the last hour, for the status page's
// pictures.
type HistoryDoc struct {
	Time          time.Time        `json:"time"`
	Start         time.Time        `json:"start"`          // where the first answers bucket starts
	BucketSeconds int              `json:"bucket_seconds"` // the width of an answers bucket
	Pools         []PoolHistoryDoc `json:"pools"`
}

// PoolHistoryDoc is one pool's last hour.
type PoolHistoryDoc struct {
	Name string `json:"name"`
	// Answers counts the pool's answers per bucket, oldest first, from Start; the last
	// bucket is the current one, still filling.
	Answers   []uint64            `json:"answers"`
	Addresses []AddressHistoryDoc `json:"addresses"`
}

// AddressHistoryDoc is one address's states over the last hour.
type AddressHistoryDoc struct {
	Address string `json:"address"`
	// States are the changes, oldest first: each state holds from its "at" until the next
	// one's (the last until "time"). The first is the state at Start, or at the first look
	// at the address when that came later.
	States []StateDoc `json:"states"`
}

// StateDoc is an address entering a state: up (answered), down (its health checks fail),
// drained (an override took it out) or disabled.
type StateDoc struct {
	At    time.Time `json:"at"`
	State string    `json:"state"`
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	hs, ok := h.cfg.Control.(Historian)
	if !ok {
		writeError(w, http.StatusNotFound, "history is not available")
		return
	}
	writeJSON(w, http.StatusOK, hs.History())
}
