package gtm

import (
	"github.com/gtm-dns/coredns-gtm/audit"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// openAudit opens where the api block records write attempts: the fleet's etcd with a
// cluster, the audit FILE on a single node, else memory (the latest records, lost on a
// restart).
func (g *GTM) openAudit() error {
	b := g.block
	if be, ok := g.st.Backend().(*etcd.Backend); ok && b.cluster != nil {
		g.audit = audit.NewEtcd(be.Client(), be.Path(), be.Node(), b.cluster.auditRetention)
		return nil
	}
	if b.api.access.audit == "" {
		g.audit = audit.NewMemory(1000)
		return nil
	}
	f, err := audit.OpenFile(b.api.access.audit)
	if err != nil {
		return err
	}
	if err := f.Check(); err != nil {
		log.Warningf("%s:%d: api: audit %s: %v: every write through the API fails (500) until it can be written", b.file, b.api.access.auditLine, b.api.access.audit, err)
	}
	g.audit = f
	return nil
}

// closeAudit lets the block's audit log go.
func (g *GTM) closeAudit() {
	if g.audit != nil {
		g.audit.Close()
		g.audit = nil
	}
}
