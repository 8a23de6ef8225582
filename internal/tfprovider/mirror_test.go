package tfprovider

import (
	"context"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"go.yaml.in/yaml/v3"

	"github.com/gtm-dns/coredns-gtm/client"
	"github.com/gtm-dns/coredns-gtm/config"
)

// PRODUCT.md Part 3: the provider's "attributes mirror the JSON forms". The JSON forms are
// the config model's (what the server decodes and answers); this test walks them by
// reflection and fails when a JSON member has no attribute of the same name in the
// resource's schema (at any depth), when an attribute has no JSON member, or when the
// client's type (through which the provider sends and reads) lacks the member, so a field
// added to the model later cannot be left out of the provider again.

// renamed are the JSON members whose attribute is spelled otherwise, and why.
var renamed = map[string]string{
	"count": "icmp_count", // a healthcheck's count: count is a Terraform meta-argument
}

// notAttributes are JSON members with no attribute on purpose.
var notAttributes = map[string]string{
	// Read-only: where the resource is defined ("corefile" or "api"). A managed resource is
	// always "api" (Corefile ones cannot be managed: import and writes refuse them); the
	// data sources gtm_healthcheck, gtm_pool and gtm_domain expose it.
	"source": "server-computed",
}

// metaOnly are attributes of every configuration resource that are not JSON members: the
// name is the API path's, id and etag come from the answer.
var metaOnly = map[string]bool{"name": true, "id": true, "etag": true}

// jsonMember is a member of a JSON form: its name and Go type.
type jsonMember struct {
	name string
	typ  reflect.Type
}

// jsonMembers lists t's JSON members as encoding/json and go-json-experiment read the tags:
// `json:"-"` is none, an untagged embedded struct is inlined.
func jsonMembers(t reflect.Type) []jsonMember {
	var out []jsonMember
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonMembers(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonMember{name, f.Type})
	}
	return out
}

// objectOf is the struct a member holds (through pointers and slices), or nil.
func objectOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	return t
}

// schemaNode is an attribute or block with what is nested in it.
type schemaNode struct {
	nested map[string]schemaNode // nil: a plain attribute
}

func blockNode(attrs map[string]schema.Attribute, blocks map[string]schema.Block) schemaNode {
	n := schemaNode{nested: map[string]schemaNode{}}
	for name := range attrs {
		n.nested[name] = schemaNode{}
	}
	for name, b := range blocks {
		switch v := b.(type) {
		case schema.ListNestedBlock:
			n.nested[name] = blockNode(v.NestedObject.Attributes, v.NestedObject.Blocks)
		case schema.SingleNestedBlock:
			n.nested[name] = blockNode(v.Attributes, v.Blocks)
		default:
			panic("unexpected block type " + reflect.TypeOf(b).String())
		}
	}
	return n
}

// mirrorGaps compares the JSON form t (and the client's form c) with the schema node n.
func mirrorGaps(where string, t, c reflect.Type, n schemaNode, top bool) []string {
	var gaps []string
	seen := map[string]bool{}
	cm := map[string]reflect.Type{}
	for _, m := range jsonMembers(c) {
		cm[m.name] = m.typ
	}
	for _, m := range jsonMembers(t) {
		if _, ok := notAttributes[m.name]; ok {
			continue
		}
		attr := m.name
		if r, ok := renamed[m.name]; ok {
			attr = r
		}
		seen[attr] = true
		ct, inClient := cm[m.name]
		if !inClient {
			gaps = append(gaps, where+m.name+": the client's "+c.Name()+" has no such JSON member")
		}
		sub, ok := n.nested[attr]
		if !ok {
			gaps = append(gaps, where+m.name+": no attribute or block")
			continue
		}
		if obj := objectOf(m.typ); obj != nil && sub.nested != nil && inClient {
			if cobj := objectOf(ct); cobj != nil {
				gaps = append(gaps, mirrorGaps(where+m.name+".", obj, cobj, sub, false)...)
			} else {
				gaps = append(gaps, where+m.name+": the client's form is not an object")
			}
		} else if (obj != nil) != (sub.nested != nil) && m.typ.Kind() != reflect.Slice {
			gaps = append(gaps, where+m.name+": an object in JSON but not in the schema, or the other way")
		}
	}
	for name := range n.nested {
		if !seen[name] && !(top && metaOnly[name]) {
			gaps = append(gaps, where+name+": an attribute that is no JSON member")
		}
	}
	sort.Strings(gaps)
	return gaps
}

func TestAttributesMirrorJSON(t *testing.T) {
	for _, tc := range []struct {
		res      func() resource.Resource
		model    any
		clientOf any
	}{
		{newHealthCheckResource, config.HealthCheck{}, client.HealthCheck{}},
		{newPoolResource, config.Pool{}, client.Pool{}},
		{newDomainResource, config.Domain{}, client.Domain{}},
	} {
		var s resource.SchemaResponse
		tc.res().Schema(context.Background(), resource.SchemaRequest{}, &s)
		mt := reflect.TypeOf(tc.model)
		for _, g := range mirrorGaps(strings.ToLower(mt.Name())+": ", mt, reflect.TypeOf(tc.clientOf), blockNode(s.Schema.Attributes, s.Schema.Blocks), true) {
			t.Error(g)
		}
	}
}

// The walk itself finds what is missing: a schema without a member, a model member the
// client lacks, and an attribute no JSON member backs.
func TestMirrorGapsFinds(t *testing.T) {
	type inner struct {
		A string `json:"a"`
		B string `json:"b,omitzero"`
	}
	type model struct {
		config.Echo
		X     int     `json:"x"`
		In    []inner `json:"in"`
		Count int     `json:"count"`
		Skip  string  `json:"-"`
	}
	type clientInner struct {
		A string `json:"a"`
	}
	type clientModel struct {
		X     int           `json:"x"`
		In    []clientInner `json:"in"`
		Count int           `json:"count"`
	}
	n := schemaNode{nested: map[string]schemaNode{
		"name": {}, "icmp_count": {}, "extra": {},
		"in": {nested: map[string]schemaNode{"a": {}}},
	}}
	got := strings.Join(mirrorGaps("", reflect.TypeOf(model{}), reflect.TypeOf(clientModel{}), n, true), "\n")
	for _, want := range []string{"x: no attribute or block", "in.b: the client's clientInner has no such JSON member", "in.b: no attribute or block", "extra: an attribute that is no JSON member"} {
		if !strings.Contains(got, want) {
			t.Errorf("gaps do not name %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "source") || strings.Contains(got, "count") || strings.Contains(got, "name") {
		t.Errorf("gaps name an excluded member:\n%s", got)
	}
}

// The documented JSON forms (docs/openapi.yaml's request schemas) mirror the schema too:
// every property of HealthCheckInput, PoolInput and DomainInput (nested objects through
// their $ref) is an attribute.
func TestAttributesMirrorOpenAPI(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc.Components.Schemas
	// object is the properties of an object schema: through $ref, items and oneOf.
	var object func(s map[string]any) map[string]any
	object = func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			return object(schemas[strings.TrimPrefix(ref, "#/components/schemas/")])
		}
		if it, ok := s["items"].(map[string]any); ok {
			return object(it)
		}
		if p, ok := s["properties"].(map[string]any); ok {
			return p
		}
		if alts, ok := s["oneOf"].([]any); ok {
			for _, a := range alts {
				if p := object(a.(map[string]any)); p != nil {
					return p
				}
			}
		}
		return nil
	}
	var walk func(where string, props map[string]any, n schemaNode, top bool)
	walk = func(where string, props map[string]any, n schemaNode, top bool) {
		for name := range n.nested {
			json := name
			for j, a := range renamed {
				if a == name {
					json = j
				}
			}
			if _, ok := props[json]; !ok && !(top && metaOnly[name]) {
				t.Errorf("openapi %s%s: an attribute the request schema does not document", where, json)
			}
		}
		for name, v := range props {
			if _, ok := notAttributes[name]; ok {
				continue
			}
			attr := name
			if r, ok := renamed[name]; ok {
				attr = r
			}
			sub, ok := n.nested[attr]
			if !ok {
				t.Errorf("openapi %s%s: no attribute or block", where, name)
				continue
			}
			if p := object(v.(map[string]any)); p != nil && sub.nested != nil {
				walk(where+name+".", p, sub, false)
			}
		}
	}
	for input, res := range map[string]func() resource.Resource{
		"HealthCheckInput": newHealthCheckResource, "PoolInput": newPoolResource, "DomainInput": newDomainResource,
	} {
		var s resource.SchemaResponse
		res().Schema(context.Background(), resource.SchemaRequest{}, &s)
		props := object(schemas[input])
		if len(props) == 0 {
			t.Fatalf("openapi: %s has no properties", input)
		}
		walk(input+": ", props, blockNode(s.Schema.Attributes, s.Schema.Blocks), true)
	}
}
