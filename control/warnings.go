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
