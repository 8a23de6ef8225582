package tfprovider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dsschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The registry documentation (cmd/terraform-provider-gtm/docs, in the layout the Terraform
// and OpenTofu registries read, as tfplugindocs writes it) is rendered from the schemas and
// the examples, so it cannot drift from the code: this test fails when a file differs from
// what the schema says. GTM_UPDATE_DOCS=1 rewrites the files.

const docsRoot = "../../cmd/terraform-provider-gtm"

type docAttr interface {
	GetDescription() string
	IsRequired() bool
	IsOptional() bool
	IsComputed() bool
	GetType() attr.Type
}

func typeName(t attr.Type) string {
	switch tt := t.(type) {
	case types.ListType:
		return "List of " + typeName(tt.ElemType)
	case types.ObjectType:
		return "Object"
	}
	switch t {
	case types.StringType:
		return "String"
	case types.Int64Type, types.Float64Type:
		return "Number"
	case types.BoolType:
		return "Boolean"
	case types.DynamicType:
		return "Dynamic"
	}
	return fmt.Sprint(t)
}

// docField is one attribute or block as the page lists it.
type docField struct {
	name, kind, desc string
	required         bool
	optional         bool
	nested           []docField // block or nested attribute's fields
}

// nestedFields reads GetNestedObject().GetAttributes() of a nested attribute.
func nestedFields(a any) []docField {
	m := reflect.ValueOf(a).MethodByName("GetNestedObject")
	if !m.IsValid() {
		return nil
	}
	obj := m.Call(nil)[0]
	attrs := obj.MethodByName("GetAttributes").Call(nil)[0]
	var out []docField
	for it := attrs.MapRange(); it.Next(); {
		out = append(out, fieldOf(it.Key().String(), it.Value().Interface().(docAttr)))
	}
	return out
}

func fieldOf(name string, a docAttr) docField {
	f := docField{name: name, kind: typeName(a.GetType()), desc: a.GetDescription(), required: a.IsRequired(), optional: a.IsOptional()}
	if n := nestedFields(a); n != nil {
		f.kind, f.nested = "Attributes List", n
	}
	return f
}

func resourceFields(s schema.Schema) []docField {
	var out []docField
	for name, a := range s.Attributes {
		out = append(out, fieldOf(name, a))
	}
	for name, b := range s.Blocks {
		f := docField{name: name, desc: b.GetDescription(), optional: true}
		var attrs map[string]schema.Attribute
		switch v := b.(type) {
		case schema.ListNestedBlock:
			f.kind, attrs = "Block List", v.NestedObject.Attributes
		case schema.SingleNestedBlock:
			f.kind, attrs = "Block", v.Attributes
		}
		for n, a := range attrs {
			f.nested = append(f.nested, fieldOf(n, a))
		}
		out = append(out, f)
	}
	return out
}

func dataFields(s dsschema.Schema) []docField {
	var out []docField
	for name, a := range s.Attributes {
		out = append(out, fieldOf(name, a))
	}
	return out
}

// renderFields writes the Required / Optional / Read-Only lists and the nested schemas.
func renderFields(b *strings.Builder, fields []docField, prefix string, top bool) {
	sort.Slice(fields, func(i, j int) bool { return fields[i].name < fields[j].name })
	groups := []struct {
		title string
		pick  func(docField) bool
	}{
		{"Required", func(f docField) bool { return f.required }},
		{"Optional", func(f docField) bool { return f.optional }},
		{"Read-Only", func(f docField) bool { return !f.required && !f.optional }},
	}
	var nested []docField
	for _, g := range groups {
		var lines []string
		for _, f := range fields {
			if !g.pick(f) {
				continue
			}
			line := fmt.Sprintf("- `%s` (%s) %s", f.name, f.kind, f.desc)
			if f.nested != nil {
				anchor := "nested--" + prefix + f.name
				line += fmt.Sprintf(" (see [below for nested schema](#%s))", anchor)
				nested = append(nested, f)
			}
			lines = append(lines, line)
		}
		if len(lines) == 0 {
			continue
		}
		if top {
			fmt.Fprintf(b, "### %s\n\n", g.title)
		} else {
			fmt.Fprintf(b, "%s:\n\n", g.title)
		}
		b.WriteString(strings.Join(lines, "\n") + "\n\n")
	}
	for _, f := range nested {
		fmt.Fprintf(b, "<a id=\"nested--%s%s\"></a>\n### Nested Schema for `%s%s`\n\n", prefix, f.name, strings.ReplaceAll(prefix, "--", "."), f.name)
		renderFields(b, f.nested, prefix+f.name+"--", false)
	}
}

func example(t *testing.T, rel string) string {
	b, err := os.ReadFile(filepath.Join(docsRoot, "examples", rel))
	if err != nil {
		t.Fatalf("example %s: %v", rel, err)
	}
	return strings.TrimRight(string(b), "\n")
}

func page(t *testing.T, name, kind, desc string, fields []docField, exampleFile, importFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---\npage_title: %q\nsubcategory: \"\"\ndescription: |-\n  %s\n---\n\n", name+" "+kind+" - gtm", desc)
	fmt.Fprintf(&b, "# %s (%s)\n\n%s\n\n## Example Usage\n\n```terraform\n%s\n```\n\n## Schema\n\n", name, kind, desc, example(t, exampleFile))
	renderFields(&b, fields, "", true)
	if importFile != "" {
		fmt.Fprintf(&b, "## Import\n\nImport is supported using the following syntax:\n\n```shell\n%s\n```\n", example(t, importFile))
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

func TestRegistryDocs(t *testing.T) {
	ctx := context.Background()
	p := New("docs")()
	want := map[string]string{}

	var ps provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &ps)
	var pf []docField
	for name, a := range ps.Schema.Attributes {
		pf = append(pf, fieldOf(name, a))
	}
	var idx strings.Builder
	fmt.Fprintf(&idx, "---\npage_title: \"gtm Provider\"\nsubcategory: \"\"\ndescription: |-\n  %s\n---\n\n# gtm Provider\n\n", ps.Schema.Description)
	fmt.Fprintf(&idx, "%s It manages health-check templates, pools and domains (the resources of `/api/v1/config`) and the operators' overrides "+
		"(address and pool modes, pins); Corefile-defined resources are read with data sources. Reads carry the resource's ETag and writes send "+
		"`If-Match`, so a change made elsewhere between plan and apply fails the apply (412) rather than being overwritten.\n\n"+
		"A local build is used through a CLI configuration's `dev_overrides { \"registry.opentofu.org/gtm-dns/gtm\" = DIR }` "+
		"(Terraform: `registry.terraform.io/gtm-dns/gtm`).\n\n## Example Usage\n\n```terraform\n%s\n```\n\n## Schema\n\n",
		ps.Schema.Description, example(t, "provider/provider.tf"))
	renderFields(&idx, pf, "", true)
	want["docs/index.md"] = strings.TrimRight(idx.String(), "\n") + "\n"

	for _, f := range p.Resources(ctx) {
		r := f()
		var m resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: "gtm"}, &m)
		var s resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &s)
		want["docs/resources/"+strings.TrimPrefix(m.TypeName, "gtm_")+".md"] = page(t, m.TypeName, "Resource", s.Schema.Description,
			resourceFields(s.Schema), "resources/"+m.TypeName+"/resource.tf", "resources/"+m.TypeName+"/import.sh")
	}
	for _, f := range p.DataSources(ctx) {
		d := f()
		var m datasource.MetadataResponse
		d.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: "gtm"}, &m)
		var s datasource.SchemaResponse
		d.Schema(ctx, datasource.SchemaRequest{}, &s)
		want["docs/data-sources/"+strings.TrimPrefix(m.TypeName, "gtm_")+".md"] = page(t, m.TypeName, "Data Source", s.Schema.Description,
			dataFields(s.Schema), "data-sources/"+m.TypeName+"/data-source.tf", "")
	}

	update := os.Getenv("GTM_UPDATE_DOCS") == "1"
	for rel, body := range want {
		file := filepath.Join(docsRoot, rel)
		if update {
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil || string(got) != body {
			t.Errorf("%s is not what the schema says (GTM_UPDATE_DOCS=1 go test -run TestRegistryDocs ./internal/tfprovider rewrites it): %v", rel, err)
		}
	}
	// No page for something the provider does not have.
	for _, sub := range []string{"docs/resources", "docs/data-sources"} {
		files, _ := filepath.Glob(filepath.Join(docsRoot, sub, "*.md"))
		for _, f := range files {
			rel, _ := filepath.Rel(docsRoot, f)
			if _, ok := want[rel]; !ok {
				t.Errorf("%s documents no resource or data source of the provider", rel)
			}
		}
	}
}
