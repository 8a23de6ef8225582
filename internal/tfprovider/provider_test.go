package tfprovider

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/gtm-dns/coredns-gtm/client"
)

func TestFieldPath(t *testing.T) {
	for in, want := range map[string]path.Path{
		"addresses[2].weight": path.Root("addresses").AtListIndex(2).AtName("weight"),
		"routes[0].pools[1]":  path.Root("routes").AtListIndex(0).AtName("pools").AtListIndex(1),
		"ttl":                 path.Root("ttl"),
		"location.lat":        path.Root("location").AtName("lat"),
	} {
		got, ok := fieldPath(in)
		if !ok || !got.Equal(want) {
			t.Errorf("%q: %s %v, want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "addresses[x]", "[0]", "a..b"} {
		if _, ok := fieldPath(in); ok {
			t.Errorf("%q: accepted", in)
		}
	}
}

// State keeps the configuration's spelling where the server's means the same, and takes
// the server's where it does not (drift).
func TestKeep(t *testing.T) {
	s := types.StringValue
	if got := keepStringC(s("1m"), "1m0s", sameDuration); got != s("1m") {
		t.Errorf("same duration: %v", got)
	}
	if got := keepStringC(s("1m"), "2m0s", sameDuration); got != s("2m0s") {
		t.Errorf("other duration: %v", got)
	}
	if got := keepString(types.StringNull(), "", "", sameString); !got.IsNull() {
		t.Errorf("omitted and unset: %v", got)
	}
	if got := keepString(s(""), "", "", sameString); got != s("") {
		t.Errorf("omitted and empty: %v", got)
	}
	if got := keepString(s("open"), "", "open", sameString); got != s("open") {
		t.Errorf("the default spelled out: %v", got)
	}
	if got := keepString(s("nodata"), "", "open", sameString); got != s("open") {
		t.Errorf("reset around Terraform: %v", got)
	}
	if got := keepString(types.StringNull(), "/x", "", sameString); got != s("/x") {
		t.Errorf("set around Terraform: %v", got)
	}
	if got := keepInt(types.Int64Value(0), 0, 0); got != types.Int64Value(0) {
		t.Errorf("zero written: %v", got)
	}
	if got := keepInt(types.Int64Null(), 0, 0); !got.IsNull() {
		t.Errorf("zero omitted: %v", got)
	}
	if got := keepIntC(types.Int64Null(), 0); got != types.Int64Value(0) {
		t.Errorf("a default spelled out by the server, imported: %v", got)
	}
	if got := keepStringC(s("2001:DB8::1"), "2001:db8::1", sameAddress); got != s("2001:DB8::1") {
		t.Errorf("IPv6 spelling: %v", got)
	}
	if got := keepString(s("2026-12-07T00:00:00+00:00"), "2026-12-07T00:00:00Z", "", sameTime); got != s("2026-12-07T00:00:00+00:00") {
		t.Errorf("RFC 3339 spelling: %v", got)
	}
}

func TestNames(t *testing.T) {
	one := types.DynamicValue(types.StringValue("web"))
	tuple := types.DynamicValue(types.TupleValueMust([]attr.Type{types.StringType}, []attr.Value{types.StringValue("web")}))
	if got := namesValue(one, []string{"web"}); !got.Equal(one) {
		t.Errorf("one name: %v", got)
	}
	if got := namesValue(tuple, []string{"web"}); !got.Equal(tuple) {
		t.Errorf("a list of one (the server answers a string): %v", got)
	}
	if got := namesValue(one, []string{"web", "tcp"}); got.Equal(one) {
		t.Errorf("drift kept the prior: %v", got)
	}
	if got, err := namesOf(namesValue(types.DynamicNull(), []string{"a", "b"})); err != nil || len(got) != 2 {
		t.Errorf("two names: %v %v", got, err)
	}
	if _, err := namesOf(types.DynamicValue(types.Int64Value(3))); err == nil {
		t.Error("a number accepted as a healthcheck")
	}
}

// Every resource and data source of the contract is there, with a valid schema.
func TestProviderSchema(t *testing.T) {
	ctx := context.Background()
	p := New("test")()
	var meta provider.MetadataResponse
	p.Metadata(ctx, provider.MetadataRequest{}, &meta)
	names := map[string]bool{}
	for _, f := range p.Resources(ctx) {
		r := f()
		var m resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: meta.TypeName}, &m)
		var s resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &s)
		if s.Diagnostics.HasError() {
			t.Errorf("%s: %v", m.TypeName, s.Diagnostics)
		}
		if d := s.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Errorf("%s: %v", m.TypeName, d)
		}
		names[m.TypeName] = true
	}
	for _, want := range []string{"gtm_healthcheck", "gtm_pool", "gtm_domain", "gtm_address_mode", "gtm_pool_mode", "gtm_pin"} {
		if !names[want] {
			t.Errorf("no resource %s", want)
		}
	}
	if len(p.DataSources(ctx)) != 5 {
		t.Errorf("data sources: %d", len(p.DataSources(ctx)))
	}
	if canonical(client.KindDomain, "WWW.gtm.example.net") != "www.gtm.example.net." || canonical(client.KindPool, "Eu") != "Eu" {
		t.Error("canonical names")
	}
}

// Members and flatten read back with the server's defaults spelled out keep the
// configuration's spelling (or its omission); a different value is the server's (drift).
func TestMembersState(t *testing.T) {
	s := types.StringValue
	prior := []memberModel{
		{DNS: []types.String{s("App.reg.test")}, Resolver: s("127.0.0.1")},
		{Kubernetes: s("ns/svc")},
		{SRV: s("_http._tcp.reg.test"), Refresh: []types.String{s("1m"), s("2m")}},
	}
	got := membersFromAPI(prior, []client.Member{
		{DNS: []string{"app.reg.test"}, Resolver: "127.0.0.1:53", Refresh: []string{"5s", "5m0s"}},
		{Kubernetes: "ns/svc", Addresses: "endpoints"},
		{SRV: "_http._tcp.reg.test", Refresh: []string{"1m0s", "2m0s"}},
	})
	if len(got) != 3 || got[0].DNS[0] != s("App.reg.test") || got[0].Resolver != s("127.0.0.1") || got[0].Refresh != nil ||
		!got[1].Addresses.IsNull() || got[2].Refresh[0] != s("1m") {
		t.Fatalf("defaults and spellings: %+v", got)
	}
	got = membersFromAPI(prior[:2], []client.Member{
		{DNS: []string{"other.reg.test"}, Refresh: []string{"1s", "2s"}},
		{Kubernetes: "ns/svc", Addresses: "loadbalancer"},
	})
	if got[0].DNS[0] != s("other.reg.test") || len(got[0].Refresh) != 2 || got[0].Refresh[0] != s("1s") || !got[0].Resolver.IsNull() || got[1].Addresses != s("loadbalancer") {
		t.Fatalf("drift: %+v", got)
	}
	if got := membersFromAPI(nil, nil); got == nil || len(got) != 0 {
		t.Fatalf("no members: %+v", got)
	}
	f := flattenFromAPI(&flattenModel{}, &client.Flatten{Refresh: []string{"5s", "5m0s"}})
	if f == nil || !f.Resolver.IsNull() || f.Refresh != nil {
		t.Fatalf("flatten {}: %+v", f)
	}
	if f := flattenFromAPI(nil, &client.Flatten{Resolver: "10.0.0.53:53", Refresh: []string{"5s", "5m0s"}}); f == nil || f.Resolver != s("10.0.0.53:53") || f.Refresh != nil {
		t.Fatalf("flatten imported: %+v", f)
	}
	if f := flattenFromAPI(&flattenModel{}, nil); f != nil {
		t.Fatalf("flatten removed around Terraform: %+v", f)
	}
}

// wait_synced and wait_timeout (or GTM_WAIT_SYNCED) become the client's wait; a bad value
// is an error on the attribute.
func TestWaitOptions(t *testing.T) {
	for _, tc := range []struct {
		sync    types.Bool
		timeout types.String
		env     string
		want    client.Options
		err     string
	}{
		{types.BoolNull(), types.StringNull(), "", client.Options{}, ""},
		{types.BoolValue(true), types.StringNull(), "", client.Options{WaitSynced: true}, ""},
		{types.BoolValue(true), types.StringValue("30s"), "", client.Options{WaitSynced: true, WaitTimeout: 30 * time.Second}, ""},
		{types.BoolNull(), types.StringNull(), "true", client.Options{WaitSynced: true}, ""},
		{types.BoolValue(false), types.StringNull(), "true", client.Options{}, ""},
		{types.BoolNull(), types.StringNull(), "yes please", client.Options{}, "GTM_WAIT_SYNCED"},
		{types.BoolValue(true), types.StringValue("10m"), "", client.Options{}, "wait_timeout"},
		{types.BoolNull(), types.StringValue("10s"), "", client.Options{}, "without wait_synced"},
	} {
		t.Setenv("GTM_WAIT_SYNCED", tc.env)
		var o client.Options
		var d diag.Diagnostics
		ok := waitOptions(providerModel{WaitSynced: tc.sync, WaitTimeout: tc.timeout}, &o, &d)
		if tc.err != "" {
			if ok || !d.HasError() || !strings.Contains(fmt.Sprint(d), tc.err) {
				t.Errorf("%v %v %q: %v %v, want an error naming %s", tc.sync, tc.timeout, tc.env, ok, d, tc.err)
			}
			continue
		}
		if !ok || o.WaitSynced != tc.want.WaitSynced || o.WaitTimeout != tc.want.WaitTimeout {
			t.Errorf("%v %v %q: %+v %v, want %+v", tc.sync, tc.timeout, tc.env, o, d, tc.want)
		}
	}
}
