package control

import "github.com/gtm-dns/coredns-gtm/config"

// warn logs, with file and line, the resources of the configuration in force that are valid
// but almost certainly not what the operator meant (config.Warnings: the API gives the
// same warnings for the resources it writes).
func warn(cfg Config, res *config.Config) {
	for _, w := range config.Warnings(res) {
		if w.Line > 0 {
			log.Warningf("%s:%d: %s", cfg.File, w.Line, w.Message)
		} else {
			log.Warningf("%s: %s (written through the API)", cfg.File, w.Message)
		}
	}
}

// warnWritten logs the warnings of the API resources cs has that old did not (a write
// through the API, or another node's): the same warnings the Corefile's resources get.
func warnWritten(cfg Config, cs, old *compiled) {
	for pc := range cs.fromPool {
		if pc.Source == config.SourceAPI && old.fromPool[pc] == nil {
			for _, w := range config.PoolWarnings(pc) {
				log.Warningf("%s: %s (written through the API)", cfg.File, w.Message)
			}
		}
	}
	for dc := range cs.fromDomain {
		if dc.Source == config.SourceAPI && old.fromDomain[dc] == nil {
			for _, w := range config.DomainWarnings(dc) {
				log.Warningf("%s: %s (written through the API)", cfg.File, w.Message)
			}
		}
	}
}
