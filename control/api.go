package control

import (
	"fmt"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

var _ api.Control = (*Block)(nil)

// The admin API's view of a block (api.Control): the API validates a write against the
// whole configuration it would leave, commits it to the store, and the store's subscriber
// (rebuild) compiles it before the call returns.

// Store implements api.Control.
func (b *Block) Store() *state.Store { return b.st }

// Merge implements api.Control.
func (b *Block) Merge(d *state.Data) (*config.Config, config.Errors) { return b.merge(d) }

// Corefile implements api.Control: the block's own resources, read-only through the API.
func (b *Block) Corefile() *config.Config { return b.cfg.Resources }

// DefaultTTL implements api.Control.
func (b *Block) DefaultTTL() uint32 { return b.cfg.TTL }

// Zones implements api.Control.
func (b *Block) Zones() []string { return b.cfg.Zones }

// Revision implements api.Control: the state revision in force.
func (b *Block) Revision() int64 {
	if cs := b.snap.Load(); cs != nil {
		return cs.revision
	}
	return 0
}

// InForce implements api.Control: the configuration the query path answers from.
func (b *Block) InForce() *config.Config {
	if cs := b.snap.Load(); cs != nil {
		return cs.res
	}
	return b.cfg.Resources
}

// Cluster implements api.Clustered.
func (b *Block) Cluster() (api.ClusterDoc, bool) {
	be, ok := b.st.Backend().(*etcd.Backend)
	if !ok {
		return api.ClusterDoc{}, false
	}
	doc := api.ClusterDoc{Node: be.Node(), Region: b.cfg.Cluster.Region, Connected: be.Connected(), Revision: b.Revision(), Nodes: be.Nodes(), Path: be.Path()}
	if doc.Nodes == nil {
		doc.Nodes = []etcd.Node{}
	}
	if e := b.configErr.Load(); e != nil {
		doc.ConfigError = *e
	}
	if err := be.Fault(); err != nil {
		doc.ConfigError = err.Error() // the store went back in time: it outranks all else
	}
	doc.NodeConflict = be.NodeConflict()
	return doc, true
}

// Explain implements api.Explainer through Config.Explain.
func (b *Block) Explain(q api.ExplainQuery) (api.ExplainDoc, error) {
	if b.cfg.Explain == nil {
		return api.ExplainDoc{}, fmt.Errorf("explain is not available for this block")
	}
	return b.cfg.Explain(q)
}
