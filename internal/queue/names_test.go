package queue

import (
	"context"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/redistest"
)

// The names the scripts read are the Go ones, as Redis's Lua (and the dev
// mode's) sees them: every status, the final ones, each event type, and
// the group, nothing more.
func TestLuaNames(t *testing.T) {
	redistest.EachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		read := redis.NewScript(luaNames + `
local out = {GROUP}
for _, tbl in ipairs({STATUS, FINAL, EVENT}) do
  local n = 0
  for _ in pairs(tbl) do n = n + 1 end
  table.insert(out, n)
end
for _, s in ipairs(ARGV) do
  table.insert(out, STATUS[s] or '')
  table.insert(out, FINAL[s] and 'final' or '')
  table.insert(out, EVENT[s] or '')
end
return out
`)
		var args []any
		for _, s := range Statuses() {
			args = append(args, string(s))
		}
		got, err := read.Run(context.Background(), rdb, nil, args...).Slice()
		if err != nil {
			t.Fatal(err)
		}
		want := []any{group}
		var finals, events int64
		var rows []any
		for _, s := range Statuses() {
			final, event := "", ""
			if s.Final() {
				final, finals = "final", finals+1
			}
			if e, ok := s.Event(); ok {
				event, events = e, events+1
			}
			rows = append(rows, string(s), final, event)
		}
		want = append(want, int64(len(Statuses())), finals, events)
		want = append(want, rows...)
		if !slices.Equal(got, want) {
			t.Fatalf("Lua sees\n%v\nGo says\n%v", got, want)
		}
	})
}

// Event types are "message." and the status, for the statuses a webhook
// hears of, and name their status back.
func TestEventTypes(t *testing.T) {
	want := []string{"message.sent", "message.deferred", "message.failed", "message.suppressed"}
	if got := EventTypes(); !slices.Equal(got, want) {
		t.Fatalf("EventTypes() = %v, want %v", got, want)
	}
	for _, s := range Statuses() {
		e, ok := s.Event()
		if ok != slices.Contains(want, e) || ok && EventStatus(e) != s {
			t.Errorf("%s: Event() = %q, %v; EventStatus of it %q", s, e, ok, EventStatus(e))
		}
	}
	if s := EventStatus("sent"); s != "" {
		t.Errorf(`EventStatus("sent") = %q, want ""`, s)
	}
}
