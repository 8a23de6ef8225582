package gtm

import (
	"context"
	"reflect"
	"sync"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// Internal lookups: a plugin that asks the server itself (plugin/pkg/upstream: file chasing
// a CNAME, in gtm's server block or in any other block of the server) gets our answer into
// a message of its own. That message goes out without our ECS scope, and a cache in that
// plugin's block stores it under the plugin's name for every client. Such a lookup is
// recognised by where the answer goes: not to a client, but into a nonwriter.Writer, the
// writer plugin/pkg/upstream (and every plugin that captures an answer) hands the server.
// gtm's own hand-on (fallthrough) also marks the context, for lookups of the plugins after it.

// internalLookup reports whether the query is another plugin's lookup rather than a client's.
func internalLookup(ctx context.Context, w dns.ResponseWriter) bool {
	return ctx.Value(handedOnKey{}) != nil || capturedWriter(w)
}

// maxWrapDepth bounds how many writers wrapping one another capturedWriter unwraps (log,
// metrics, rewrite, the server's scrub writer...: a handful in practice).
const maxWrapDepth = 16

// capturedWriter reports whether w, or a writer it wraps, is a nonwriter.Writer: the answer
// is captured by a plugin, not sent to the client. Writers are unwrapped through their
// embedded dns.ResponseWriter, the way every CoreDNS plugin wraps one.
func capturedWriter(w dns.ResponseWriter) bool {
	for range maxWrapDepth {
		switch x := w.(type) {
		case nil:
			return false
		case *nonwriter.Writer:
			return true
		case *request.ScrubWriter:
			w = x.ResponseWriter
		case *dnstest.Recorder:
			w = x.ResponseWriter
		case *existsWriter:
			w = x.ResponseWriter
		default:
			inner, ok := embeddedWriter(w)
			if !ok {
				return false
			}
			w = inner
		}
	}
	return false
}

// wrapField caches, per writer type, the index of its embedded dns.ResponseWriter field
// (-1: none). Read without a lock on the query path; a type is looked up once.
var wrapField sync.Map // reflect.Type -> int

var responseWriterType = reflect.TypeFor[dns.ResponseWriter]()

// embeddedWriter returns the dns.ResponseWriter that w (a pointer to a struct) embeds.
func embeddedWriter(w dns.ResponseWriter) (dns.ResponseWriter, bool) {
	v := reflect.ValueOf(w)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	t := v.Type()
	idx, ok := wrapField.Load(t)
	if !ok {
		idx = -1
		st := t.Elem()
		for i := range st.NumField() {
			f := st.Field(i)
			if f.Anonymous && f.Type == responseWriterType {
				idx = i
				break
			}
		}
		wrapField.Store(t, idx)
	}
	i := idx.(int)
	if i < 0 {
		return nil, false
	}
	f := v.Elem().Field(i)
	if f.IsNil() {
		return nil, false
	}
	inner, ok := f.Interface().(dns.ResponseWriter)
	return inner, ok
}
