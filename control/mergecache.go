package control

import (
	"bytes"
	"strings"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
)

// mergeCache is the last configuration merged without error and the API resources it was
// merged from. An API write merges twice the same resources: the handler validates the state
// the write would leave, then the store's subscriber compiles the state it committed. The
// second merge is the first's result when the API resources are byte for byte the same
// (revisions aside: they do not change what a resource says). Merged configurations are
// never changed, so both may hold the same one.
type mergeCache struct {
	entries map[string][]byte // config/ keys -> values
	res     *config.Config
}

func configEntries(d *state.Data) map[string][]byte {
	out := map[string][]byte{}
	for k, e := range d.Entries {
		if strings.HasPrefix(k, state.ConfigPrefix) {
			out[k] = e.Value
		}
	}
	return out
}

func (c *mergeCache) matches(d *state.Data) bool {
	n := 0
	for k, e := range d.Entries {
		if !strings.HasPrefix(k, state.ConfigPrefix) {
			continue
		}
		n++
		if v, ok := c.entries[k]; !ok || !bytes.Equal(v, e.Value) {
			return false
		}
	}
	return n == len(c.entries)
}

// cachedMerge is config.Merge for the block, answered from the cache when it matches.
func (b *Block) cachedMerge(d *state.Data) (*config.Config, config.Errors) {
	if c := b.lastMerge.Load(); c != nil && c.matches(d) {
		return c.res, nil
	}
	res, errs := config.Merge(b.cfg.Resources, b.cfg.Env, b.cfg.TTL, d)
	if len(errs) == 0 {
		b.lastMerge.Store(&mergeCache{entries: configEntries(d), res: res})
	}
	return res, errs
}
