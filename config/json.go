package config

import (
	"errors"
	"fmt"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"strings"
)

// Decode reads the JSON form of one resource strictly: one object, known field names only
// (case-sensitive), no duplicate names, nothing after it. Omitted fields take the Corefile
// defaults; a domain's TTL defaults to defaultTTL, the block's. The name is not part of
// the body: it comes from the API path or the state key.
func Decode(k Kind, name string, body []byte, defaultTTL uint32) (Resource, error) {
	var r Resource
	switch k {
	case KindHealthCheck:
		r = NewHealthCheck(name)
	case KindPool:
		r = NewPool(name)
	case KindDomain:
		r = NewDomain(name, defaultTTL)
	default:
		return nil, fmt.Errorf("unknown kind %q: expected healthchecks, pools or domains", k)
	}
	m := r.meta()
	m.Source = SourceAPI
	if err := json.Unmarshal(body, r, json.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("%s: %s", Label(r), JSONError(err))
	}
	echo := echoOf(r)
	if echo.Echoed != "" && echo.Echoed != SourceAPI {
		return nil, fmt.Errorf("%s: source %q: only API resources are written through the API (the Corefile's are read-only)", Label(r), echo.Echoed)
	}
	echo.Echoed = ""
	if h, ok := r.(*HealthCheck); ok {
		h.Normalize()
	}
	if p, ok := r.(*Pool); ok {
		p.flattenOff()
	}
	return r, nil
}

func echoOf(r Resource) *Echo {
	switch v := r.(type) {
	case *HealthCheck:
		return &v.Echo
	case *Pool:
		return &v.Echo
	case *Domain:
		return &v.Echo
	}
	return &Echo{}
}

// JSONError rewords a decoder error: JSON pointer paths as field paths
// ("/addresses/0/weight" -> "addresses[0].weight").
func JSONError(err error) string {
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &se) && se.JSONPointer != "":
		what := se.Err
		msg := "bad value"
		if what != nil {
			msg = what.Error()
		} else if se.JSONKind != 0 && se.GoType != nil {
			msg = fmt.Sprintf("JSON %s cannot be %s", se.JSONKind, goKind(se.GoType.String()))
		}
		return fmt.Sprintf("%s: %s", fieldPath(string(se.JSONPointer)), msg)
	case errors.As(err, &syn):
		return "malformed JSON: " + strings.TrimPrefix(syn.Error(), "jsontext: ")
	}
	return "bad JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

func goKind(t string) string {
	switch {
	case strings.Contains(t, "int"):
		return "a number"
	case t == "string" || strings.HasSuffix(t, "Duration"):
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return "an object"
}

func fieldPath(ptr string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if part != "" && strings.Trim(part, "0123456789") == "" {
			b.WriteString("[" + part + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

// Encode returns the JSON settings of r (defaults spelled out).
func Encode(r Resource) ([]byte, error) { return json.Marshal(r) }

// UnmarshalJSONFrom gives an address in a JSON list the Corefile defaults for what it omits.
func (a *Address) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type plain Address
	p := plain(NewAddress(""))
	if err := json.UnmarshalDecode(dec, &p); err != nil {
		return err
	}
	*a = Address(p)
	return nil
}

// UnmarshalJSONFrom gives a route the default select mode when it omits it.
func (r *Route) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type plain Route
	p := plain(NewRoute(""))
	if err := json.UnmarshalDecode(dec, &p); err != nil {
		return err
	}
	*r = Route(p)
	return nil
}
