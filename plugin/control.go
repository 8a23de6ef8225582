package gtm

import (
	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// The admin API's view of a block (api.Control): the API validates a write against the
// whole configuration it would leave, commits it to the store, and the store's subscriber
// (rebuild) compiles it before the call returns.

// Store implements api.Control.
func (g *GTM) Store() *state.Store { return g.st }

// Merge implements api.Control.
func (g *GTM) Merge(d *state.Data) (*config.Config, config.Errors) { return g.merge(d) }

// Corefile implements api.Control: the block's own resources, read-only through the API.
func (g *GTM) Corefile() *config.Config { return g.block.res }

// DefaultTTL implements api.Control.
func (g *GTM) DefaultTTL() uint32 { return g.block.ttl }

// Zones implements api.Control.
func (g *GTM) Zones() []string { return g.block.zones }

// Revision implements api.Control: the state revision in force.
func (g *GTM) Revision() int64 {
	if cs := g.snap.Load(); cs != nil {
		return cs.revision.Load()
	}
	return 0
}

// InForce implements api.Control: the configuration the query path answers from.
func (g *GTM) InForce() *config.Config {
	if cs := g.snap.Load(); cs != nil {
		return cs.res
	}
	return g.block.res
}

// Cluster implements api.Clustered.
func (g *GTM) Cluster() (api.ClusterDoc, bool) {
	be, ok := g.st.Backend().(*etcd.Backend)
	if !ok {
		return api.ClusterDoc{}, false
	}
	doc := api.ClusterDoc{Node: be.Node(), Region: g.block.cluster.region, Connected: be.Connected(), Revision: g.Revision(), Nodes: be.Nodes(), Path: be.Path()}
	if doc.Nodes == nil {
		doc.Nodes = []etcd.Node{}
	}
	if e := g.configErr.Load(); e != nil {
		doc.ConfigError = *e
	}
	if err := be.Fault(); err != nil {
		doc.ConfigError = err.Error() // the store went back in time: it outranks all else
	}
	return doc, true
}
