package control

import (
	"github.com/gtm-dns/coredns-gtm/audit"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// openAudit opens where the api block records write attempts: the fleet's etcd with a
// cluster, the audit FILE on a single node, else memory (the latest records, lost on a
// restart).
func (b *Block) openAudit() error {
	a := b.cfg.API
	if be, ok := b.st.Backend().(*etcd.Backend); ok && b.cfg.Cluster != nil {
		e := audit.NewEtcd(be.Client(), be.Path(), be.Node(), b.cfg.Cluster.AuditRetention)
		e.Connected = be.Connected // a partitioned node's refusal answers at once
		b.audit = e
		return nil
	}
	if a.Audit == "" {
		b.audit = audit.NewMemory(1000)
		return nil
	}
	f, err := audit.OpenFile(a.Audit)
	if err != nil {
		return err
	}
	if err := f.Check(); err != nil {
		log.Warningf("%s:%d: api: audit %s: %v: every write through the API fails (500) until it can be written", b.cfg.File, a.AuditLine, a.Audit, err)
	}
	b.audit = f
	return nil
}

// closeAudit lets the block's audit log go.
func (b *Block) closeAudit() {
	if b.audit != nil {
		b.audit.Close()
		b.audit = nil
	}
}
