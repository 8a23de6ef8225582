package tfprovider

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/gtm-dns/coredns-gtm/client"
)

// apiDiag turns a failed API call into diagnostics a person can act on: the server's own
// message, what the status means for a plan, and for a refused write its validation errors
// on the attributes they name.
func apiDiag(diags *diag.Diagnostics, what string, err error) {
	var e *client.Error
	if !errors.As(err, &e) {
		diags.AddError(what+": cannot reach the gtm API", err.Error())
		return
	}
	summary := fmt.Sprintf("%s: %d %s", what, e.Status, http.StatusText(e.Status))
	if client.Lagging(err) {
		nodes := make([]string, len(e.Lagging))
		for i, l := range e.Lagging {
			nodes[i] = fmt.Sprintf("%s (at revision %d)", l.Node, l.Revision)
		}
		diags.AddError(what+": written, but not yet in force on every node",
			fmt.Sprintf("The server applied the write (revision %d), but when the wait of wait_synced ended %s had not applied it (the server: %s).\n\n"+
				"The write stands and the nodes catch up when they can (a node cut off leaves the node list within its lease). "+
				"Check the fleet with GET /api/v1/cluster, then run apply again. A resource created by this write is marked tainted: "+
				"`tofu untaint ADDRESS` keeps it instead of replacing it.", e.Revision, strings.Join(nodes, ", "), e.Message))
		return
	}
	switch e.Status {
	case http.StatusPreconditionFailed:
		diags.AddError(summary, fmt.Sprintf("The server refused the write because its precondition failed: %s.\n\n"+
			"The resource was changed on the server (through the API, gtmctl or another node) after Terraform "+
			"last read it, or it already exists. Nothing was overwritten. Run plan again to see the change "+
			"(or import the existing resource), then apply.", e.Message))
	case http.StatusConflict:
		detail := "The server refused the write: " + e.Message + "."
		if strings.Contains(e.Message, "Corefile") {
			detail += "\n\nCorefile-defined resources are read-only through the API: change them in the Corefile, " +
				"or read them with the data sources gtm_healthcheck, gtm_pool and gtm_domain."
		}
		diags.AddError(summary, detail)
	case http.StatusUnauthorized, http.StatusForbidden:
		diags.AddError(summary, "The server refused the token: "+e.Message+". Check the provider's token, token_file or GTM_TOKEN.")
	case http.StatusBadRequest:
		if len(e.Errors) == 0 {
			diags.AddError(summary, "The server refused the request: "+e.Message)
			return
		}
		for _, fe := range e.Errors {
			if p, ok := fieldPath(fe.Field); ok {
				diags.AddAttributeError(p, summary, fe.Message)
			} else {
				diags.AddError(summary, fe.Message)
			}
		}
	default:
		diags.AddError(summary, e.Message)
	}
}

// fieldPath turns an API field path ("addresses[2].weight", "routes[0].pools[1]") into the
// attribute path of the same name: attributes and blocks are named as the JSON members.
func fieldPath(field string) (path.Path, bool) {
	if field == "" {
		return path.Empty(), false
	}
	var p path.Path
	first := true
	for _, part := range strings.Split(field, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name == "" {
			return path.Empty(), false
		}
		if first {
			if name == "count" {
				name = "icmp_count" // count is a Terraform meta-argument
			}
			p, first = path.Root(name), false
		} else {
			p = p.AtName(name)
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(idx)
			if !ok || err != nil {
				return path.Empty(), false
			}
			p = p.AtListIndex(n)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return p, true
}
