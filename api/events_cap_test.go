package api

import (
	"strings"
	"testing"
)

// An event quoting a huge value is cut: the ring, the page and webhooks carry it.
func TestEventMessageCapped(t *testing.T) {
	ev := NewEvents(4)
	ev.Add(Event{Kind: "config", Message: "pool huge: address \"" + strings.Repeat("é", 500<<10) + "\""})
	ev.Add(Event{Kind: "config", Message: "small"})
	got := ev.Since(0)
	if len(got[0].Message) > maxEventMessage+64 || !strings.Contains(got[0].Message, "bytes cut)") {
		t.Fatalf("a huge message kept %d bytes", len(got[0].Message))
	}
	if got[1].Message != "small" {
		t.Fatalf("a small message changed: %q", got[1].Message)
	}
}
