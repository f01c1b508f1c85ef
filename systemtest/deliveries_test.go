package systemtest

import (
	"net/url"
	"reflect"
	"testing"
)

// pageThroughDeliveries walks GET /v1/webhooks/{name}/deliveries in pages
// of two and checks they add up to all (one unpaged answer, newest first),
// each once, with next on every page but the last; a made-up cursor or a
// limit out of range is a 400 invalid_query.
func pageThroughDeliveries(t *testing.T, s *harness, name string, all []any) {
	t.Helper()
	if len(all) < 3 {
		t.Fatalf("%d deliveries: too few to page", len(all))
	}
	var got []any
	after, pages := "", 0
	for {
		q := url.Values{"limit": {"2"}}
		if after != "" {
			q.Set("after", after)
		}
		r := s.do("GET", "/v1/webhooks/"+name+"/deliveries?"+q.Encode(), s.adminToken, nil)
		if r.status != 200 {
			t.Fatalf("page %d: %d %s", pages, r.status, r.body)
		}
		body := r.json(t)
		page := body["deliveries"].([]any)
		if len(page) > 2 {
			t.Fatalf("page %d of limit 2 holds %d", pages, len(page))
		}
		got = append(got, page...)
		pages++
		next, _ := body["next"].(string)
		if next == "" {
			if len(page) == 2 && len(got) < len(all) {
				t.Fatalf("page %d is full but has no next", pages)
			}
			break
		}
		after = next
		if pages > len(all) {
			t.Fatal("the pages do not end")
		}
	}
	if !reflect.DeepEqual(got, all) {
		t.Fatalf("%d pages add up to\n%v\nnot\n%v", pages, got, all)
	}
	for _, q := range []string{"after=yesterday", "after=1-2-3", "after=0-0", "after=99999999999999999999-0", "limit=0", "limit=1001", "limit=x"} {
		if r := s.do("GET", "/v1/webhooks/"+name+"/deliveries?"+q, s.adminToken, nil); r.status != 400 || r.code(t) != "invalid_query" {
			t.Errorf("?%s: %d, want 400 invalid_query", q, r.status)
		}
	}
}
