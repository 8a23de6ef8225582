package tfprovider

import (
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The server answers with its canonical spelling of a value (durations as Go prints them,
// numbers where a string was sent, an omitted member for a default). State keeps the
// configuration's spelling when the two mean the same, so a plan after an apply is empty;
// a different meaning is written as the server's value, which is how drift shows.

// sameString compares exactly.
func sameString(a, b string) bool { return a == b }

// sameFold compares without case (methods, domain names).
func sameFold(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// sameDuration compares Go durations by value ("1m" and "1m0s"); anything else exactly.
func sameDuration(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := time.ParseDuration(a)
	y, err2 := time.ParseDuration(b)
	return err1 == nil && err2 == nil && x == y
}

// sameTime compares RFC 3339 times by instant; anything else exactly.
func sameTime(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := time.Parse(time.RFC3339Nano, a)
	y, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && x.Equal(y)
}

// keepString is the state value of a string the server answered with v ("" when it omitted
// it, meaning def): prior (the plan's or the last state's value) when it means the same.
func keepString(prior types.String, v, def string, same func(a, b string) bool) types.String {
	if !prior.IsNull() && !prior.IsUnknown() {
		pv := prior.ValueString()
		if same(pv, v) || (v == "" && same(pv, def)) {
			return prior
		}
	}
	if v == "" {
		switch {
		case prior.IsNull():
			return types.StringNull()
		case def != "":
			return types.StringValue(def)
		case prior.IsUnknown():
			return types.StringValue("")
		}
		return types.StringNull()
	}
	return types.StringValue(v)
}

// keepInt is keepString for numbers; def is what an omitted member (v == 0) means.
func keepInt(prior types.Int64, v, def int64) types.Int64 {
	if !prior.IsNull() && !prior.IsUnknown() {
		pv := prior.ValueInt64()
		if pv == v || (v == 0 && pv == def) {
			return prior
		}
	}
	if v == 0 {
		switch {
		case prior.IsNull():
			return types.Int64Null()
		case def != 0:
			return types.Int64Value(def)
		case prior.IsUnknown():
			return types.Int64Value(0)
		}
		return types.Int64Null()
	}
	return types.Int64Value(v)
}

// strOf is a known string's value, "" for null or unknown.
func strOf(v types.String) string {
	if v.IsNull() || v.IsUnknown() {
		return ""
	}
	return v.ValueString()
}

// intOf is a known number's value, 0 for null or unknown.
func intOf(v types.Int64) int64 {
	if v.IsNull() || v.IsUnknown() {
		return 0
	}
	return v.ValueInt64()
}

// keepStringC is keepString for an attribute with a default the server always spells out:
// its value is never null.
func keepStringC(prior types.String, v string, same func(a, b string) bool) types.String {
	if !prior.IsNull() && !prior.IsUnknown() && same(prior.ValueString(), v) {
		return prior
	}
	return types.StringValue(v)
}

// keepIntC is keepInt for an attribute with a default the server always spells out.
func keepIntC(prior types.Int64, v int64) types.Int64 {
	if !prior.IsNull() && !prior.IsUnknown() && prior.ValueInt64() == v {
		return prior
	}
	return types.Int64Value(v)
}

// keepBoolC is keepBool for an attribute with a default the server always spells out.
func keepBoolC(prior types.Bool, v bool) types.Bool {
	if !prior.IsNull() && !prior.IsUnknown() && prior.ValueBool() == v {
		return prior
	}
	return types.BoolValue(v)
}

// keepOmittable is keepString for an optional attribute whose default the server spells
// out (a kubernetes member's addresses): the default read back for an attribute the
// configuration leaves out stays null.
func keepOmittable(prior types.String, v, def string, same func(a, b string) bool) types.String {
	if prior.IsNull() && v != "" && same(v, def) {
		return types.StringNull()
	}
	return keepString(prior, v, "", same)
}

// strsOf is the values of a list of known strings (null and unknown elements as "").
func strsOf(l []types.String) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = strOf(v)
	}
	return out
}

// sameList compares two lists element by element with same.
func sameList(a, b []string, same func(a, b string) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !same(a[i], b[i]) {
			return false
		}
	}
	return true
}

// keepList is keepString for a list: prior when it means the same as the server's v; null
// when prior is null and v is empty or def (a default the server spells out).
func keepList(prior []types.String, v, def []string, same func(a, b string) bool) []types.String {
	if prior != nil && sameList(strsOf(prior), v, same) {
		return prior
	}
	if prior == nil && (len(v) == 0 || (def != nil && sameList(v, def, same))) {
		return nil
	}
	return strList(v)
}
