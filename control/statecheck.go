package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// What a node says about shared state it cannot use: bounded (one key of a megabyte must
// not make a megabyte event, config_error and status page) and complete about overrides
// written around the API (a mode or pin value that does not decode is reported, not taken
// silently as auto or unpinned).

const (
	// maxReported is how many validation errors a config_error names; the rest are counted.
	maxReported = 5
	// maxErrorText bounds one error's text (a value quoted in it is cut).
	maxErrorText = 300
	// maxQuoted bounds a stored value quoted in an override error.
	maxQuoted = 80
)

// summarise is errs for config_error and its event: at most maxReported errors, each at
// most maxErrorText bytes, and how many more there were.
func summarise(errs config.Errors) string {
	msgs := make([]string, 0, min(len(errs), maxReported))
	for i, e := range errs {
		if i == maxReported {
			break
		}
		msgs = append(msgs, cut(e.Message, maxErrorText))
	}
	return joinMore(msgs, len(errs))
}

func joinMore(msgs []string, total int) string {
	s := strings.Join(msgs, "; ")
	if more := total - len(msgs); more > 0 {
		s += fmt.Sprintf("; and %d more error(s)", more)
	}
	return s
}

// cut shortens s to at most n bytes (on a rune boundary), saying how much was left out.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + fmt.Sprintf("…(%d bytes more)", len(s)-i)
}

// invalidOverrides lists the mode, pool mode and pin keys of d whose value does not decode
// (written around the API): each with its key, the value (cut) and the expected form. Such
// an override is not in force (the address's mode is auto, the domain unpinned).
func invalidOverrides(d *state.Data) []string {
	var out []string
	for k, e := range d.Entries {
		var why string
		switch {
		case strings.HasPrefix(k, state.ModesPrefix), strings.HasPrefix(k, state.PoolModesPrefix):
			var v state.ModeValue
			if err := decodeObject(e.Value, &v); err != nil {
				why = `expected {"mode":"auto|up|down"}: ` + err.Error()
			} else if _, ok := policy.ParseMode(v.Mode); !ok || v.Mode == "" {
				why = fmt.Sprintf("mode %q: expected auto, up or down", cut(v.Mode, maxQuoted))
			}
		case strings.HasPrefix(k, state.PinsPrefix):
			var v state.PinValue
			if err := decodeObject(e.Value, &v); err != nil {
				why = `expected {"pool":"NAME"}: ` + err.Error()
			}
		default:
			continue
		}
		if why != "" {
			out = append(out, fmt.Sprintf("%s = %s: %s", cut(k, maxQuoted), cut(string(e.Value), maxQuoted), why))
		}
	}
	sort.Strings(out)
	return out
}

// decodeObject decodes a JSON object into v; anything else (a bare string, a number) is an
// error naming what it is.
func decodeObject(b []byte, v any) error {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		kind := "not JSON"
		if json.Valid(t) {
			switch {
			case len(t) > 0 && t[0] == '"':
				kind = "a JSON string"
			case len(t) > 0 && t[0] == '[':
				kind = "a JSON array"
			default:
				kind = "a JSON " + string(t[:min(len(t), 5)])
			}
		}
		return fmt.Errorf("the value is %s, not an object", kind)
	}
	if err := json.Unmarshal(t, v); err != nil {
		return fmt.Errorf("%s", cut(err.Error(), maxQuoted))
	}
	return nil
}

// noteOverrides reports the invalid override values of d, the state now in force, in
// config_error (with an event and the config error counter when that changes), or
// clears a config_error once the state is clean. b.mu held.
func (b *Block) noteOverrides(d *state.Data) {
	bad := invalidOverrides(d)
	if len(bad) == 0 {
		if b.configErr.Swap(nil) != nil {
			log.Infof("state revision %d applied: the configuration error is cleared", d.Revision)
		}
		return
	}
	shown := bad[:min(len(bad), maxReported)]
	msg := "overrides in the state that do not decode are not in force (written around the API?): " + joinMore(shown, len(bad))
	if prev := b.configErr.Swap(&msg); prev != nil && *prev == msg {
		return
	}
	log.Errorf("%s", msg)
	metrics.ConfigErrors.Inc()
	record(api.Event{Kind: "config", Message: msg})
}
