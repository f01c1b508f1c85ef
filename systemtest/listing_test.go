package systemtest

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/outbound-mail/outbound/internal/redistest"
	"github.com/outbound-mail/outbound/internal/smtptest"
)

// refuseNobody makes the tenant's account refuse nobody@example.com for
// good, so a message to it fails.
func refuseNobody() smtptest.Options {
	return smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(to string) *smtp.SMTPError {
		if to == "nobody@example.com" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}}}
}

// acmeTo is a message of acme's to one address, with tags.
func acmeTo(to string, tags ...string) map[string]any {
	return map[string]any{"tenant_id": "acme", "from": map[string]string{"email": "acme@gmail.com"},
		"to": []map[string]string{{"email": to}}, "subject": "hi", "text": "hi", "tags": tags}
}

// list pages through GET /v1/messages?query with token and returns the
// ids in the order answered, calling between (if any) after each page.
func (h *harness) list(t *testing.T, token, query string, between func()) []string {
	t.Helper()
	var ids []string
	after := ""
	for range 1000 {
		q, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		if after != "" {
			q.Set("after", after)
		}
		r := h.do("GET", "/v1/messages?"+q.Encode(), token, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/messages?%s: %d %s", q.Encode(), r.status, r.body)
		}
		body := r.json(t)
		msgs, _ := body["messages"].([]any)
		for _, m := range msgs {
			ids = append(ids, m.(map[string]any)["id"].(string))
		}
		next, _ := body["next"].(string)
		if next == "" {
			return ids
		}
		after = next
		if between != nil {
			between()
		}
	}
	t.Fatal("no end to the pages")
	return nil
}

func newestFirst(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

func TestListMessages(t *testing.T) {
	s := newSendSetup(t, refuseNobody())
	s.putProfile(t, nil)
	var acme, all []string
	post := func(body map[string]any) string {
		id := s.accept(t, body)
		all = append(all, id)
		time.Sleep(2 * time.Millisecond) // distinct accept milliseconds: the order below is exact
		return id
	}
	inv1 := post(acmeTo("client@example.com", "invoice"))
	beta1 := post(oneRecipient("beta"))
	failed := post(acmeTo("nobody@example.com", "reminder"))
	inv2 := post(acmeTo("Client@Example.com", "invoice", "q3"))
	beta2 := post(oneRecipient("beta"))
	acme = []string{inv1, failed, inv2}
	for _, id := range []string{inv1, beta1, inv2, beta2} {
		s.waitStatus(t, id, "sent")
	}
	s.waitStatus(t, failed, "failed")

	want := map[string][]string{
		"":                                     newestFirst(all...),
		"tenant_id=acme":                       newestFirst(acme...),
		"tenant_id=beta":                       newestFirst(beta1, beta2),
		"tenant_id=acme&tag=invoice":           newestFirst(inv1, inv2),
		"tenant_id=acme&to=CLIENT@example.com": newestFirst(inv1, inv2),
		"tenant_id=acme&to=client@example.com&tag=q3": {inv2},
		"tenant_id=acme&to=nobody@example.com":        {failed},
		"status=failed":                               {failed},
		"tenant_id=acme&status=sent":                  newestFirst(inv1, inv2),
		"status=queued":                               nil,
		"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)):                 nil,
		"until=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)):                nil,
		"tenant_id=acme&since=" + url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)): newestFirst(acme...),
	}
	for query, ids := range want {
		for _, limit := range []string{"1", "50"} {
			if got := s.list(t, s.adminToken, query+"&limit="+limit, nil); !slices.Equal(got, ids) {
				t.Errorf("?%s&limit=%s: got %v, want %v", query, limit, got, ids)
			}
		}
	}

	// A page's shape: the summary of each message, newest first.
	r := s.do("GET", "/v1/messages?tenant_id=acme&limit=1", s.adminToken, nil)
	page := r.json(t)
	first := page["messages"].([]any)[0].(map[string]any)
	if first["id"] != inv2 || first["status"] != "sent" || first["route"] != "tenant" || first["sent_at"] == nil ||
		!slices.Equal(anyStrings(first["tags"]), []string{"invoice", "q3"}) || page["next"] != inv2 {
		t.Errorf("first page: %s", r.body)
	}
	r = s.do("GET", "/v1/messages?tenant_id=acme&status=failed", s.adminToken, nil)
	if m := r.json(t)["messages"].([]any)[0].(map[string]any); m["error"] == nil {
		t.Errorf("failed message without its error: %s", r.body)
	}

	// A tenant-bound key sees its own tenant, named or not; another's is 403.
	for _, token := range []string{s.acmeToken, s.acmeAdmin} {
		if got := s.list(t, token, "", nil); !slices.Equal(got, newestFirst(acme...)) {
			t.Errorf("bound key: got %v, want acme's %v", got, newestFirst(acme...))
		}
		if got := s.list(t, token, "tag=invoice", nil); !slices.Equal(got, newestFirst(inv1, inv2)) {
			t.Errorf("bound key, tag: got %v", got)
		}
		if r := s.do("GET", "/v1/messages?tenant_id=beta", token, nil); r.status != http.StatusForbidden || r.code(t) != "forbidden" {
			t.Errorf("bound key, another tenant: %d %s", r.status, r.body)
		}
	}

	for _, q := range []string{"limit=0", "limit=1001", "status=lost", "since=yesterday", "after=nope",
		"tenant_id=-bad", "tag=invoice", "to=client@example.com"} {
		if r := s.do("GET", "/v1/messages?"+q, s.adminToken, nil); r.status != http.StatusBadRequest || r.code(t) != "invalid_query" {
			t.Errorf("?%s: %d %s", q, r.status, r.body)
		}
	}
	if r := s.do("GET", "/v1/messages", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}

// Messages accepted while a client pages are newer than its cursor: a walk
// answers each message accepted before it once, none twice, none skipped.
func TestListPagesStayStableWhileMessagesArrive(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{})
	var before []string
	for range 9 {
		before = append(before, s.accept(t, oneRecipient("beta")))
		time.Sleep(2 * time.Millisecond)
	}
	got := s.list(t, s.sendToken, "tenant_id=beta&limit=2", func() { s.accept(t, oneRecipient("beta")) })
	if !slices.Equal(got, newestFirst(before...)) {
		t.Errorf("walk while messages arrive: got %v, want %v", got, newestFirst(before...))
	}
	got = s.list(t, s.adminToken, "limit=3", func() { s.accept(t, oneRecipient("gamma")) })
	if len(got) < len(before) || !slices.Equal(got[len(got)-len(before):], newestFirst(before...)) {
		t.Errorf("cross-tenant walk: got %v, want it to end with %v", got, newestFirst(before...))
	}
}

// A message whose record is past its retention leaves the listings.
func TestListForgetsExpiredMessages(t *testing.T) {
	s := newSendSetup(t, smtptest.Options{}, withRetention)
	id := s.accept(t, oneRecipient("beta"))
	s.waitStatus(t, id, "sent")
	if got := s.list(t, s.adminToken, "tenant_id=beta", nil); !slices.Equal(got, []string{id}) {
		t.Fatalf("before the retention: %v", got)
	}
	time.Sleep(1500 * time.Millisecond)
	for _, q := range []string{"tenant_id=beta", "", "tenant_id=beta&to=client@example.com"} {
		if got := s.list(t, s.adminToken, q, nil); len(got) != 0 {
			t.Errorf("?%s past the retention: %v", q, got)
		}
	}
}

// sums adds up a stats answer's buckets.
func sums(t *testing.T, r response, list string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, b := range r.json(t)[list].([]any) {
		for k, v := range b.(map[string]any) {
			if n, ok := v.(float64); ok {
				out[k] += n
			}
		}
	}
	return out
}

func TestStats(t *testing.T) {
	s := newSendSetup(t, refuseNobody())
	s.putProfile(t, nil)
	sent := []string{s.accept(t, acmeTo("client@example.com")), s.accept(t, oneRecipient("beta")), s.accept(t, oneRecipient("beta"))}
	failed := s.accept(t, acmeTo("nobody@example.com"))
	for _, id := range sent {
		s.waitStatus(t, id, "sent")
	}
	s.waitStatus(t, failed, "failed")

	for query, want := range map[string]map[string]float64{
		"":                {"sent": 3, "failed": 1},
		"?tenant_id=acme": {"sent": 1, "failed": 1},
		"?tenant_id=beta": {"sent": 2},
		"?tenant_id=none": {},
	} {
		r := s.do("GET", "/v1/stats"+query, s.adminToken, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/stats%s: %d %s", query, r.status, r.body)
		}
		body := r.json(t)
		if len(body["minutes"].([]any)) != 60 || len(body["hours"].([]any)) != 24 || len(body["partitions"].([]any)) != 2 {
			t.Errorf("GET /v1/stats%s: shape %s", query, r.body)
		}
		for _, list := range []string{"minutes", "hours"} {
			got := sums(t, r, list)
			if got["sent"] != want["sent"] || got["failed"] != want["failed"] || got["deferred"] != 0 {
				t.Errorf("GET /v1/stats%s %s: %v, want %v", query, list, got, want)
			}
		}
	}
	if r := s.do("GET", "/v1/stats", s.acmeAdmin, nil); r.status != http.StatusForbidden || r.code(t) != "operator_only" {
		t.Errorf("a tenant's admin: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/v1/stats", s.sendToken, nil); r.status != http.StatusForbidden || r.code(t) != "forbidden" {
		t.Errorf("a send key: %d %s", r.status, r.body)
	}
	if r := s.do("GET", "/v1/stats?tenant_id=-x", s.adminToken, nil); r.status != http.StatusBadRequest || r.code(t) != "invalid_query" {
		t.Errorf("a bad tenant id: %d %s", r.status, r.body)
	}
}

// On Redis Cluster the indexes and counters keep to their partitions'
// slots; listings and stats merge the partitions.
func TestListingAndStatsOnRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	s := newSendSetup(t, smtptest.Options{}, func(o *options) { o.cluster, o.partitions = cluster, 6 })
	var all []string
	byTenant := map[string][]string{}
	for i := range 12 {
		tenant := []string{"beta", "gamma", "delta", "omega"}[i%4]
		id := s.accept(t, oneRecipient(tenant))
		all = append(all, id)
		byTenant[tenant] = append(byTenant[tenant], id)
		time.Sleep(2 * time.Millisecond)
	}
	for _, id := range all {
		s.waitStatus(t, id, "sent")
	}
	if got := s.list(t, s.adminToken, "limit=5", nil); !slices.Equal(got, newestFirst(all...)) {
		t.Errorf("every tenant: got %v, want %v", got, newestFirst(all...))
	}
	for tenant, ids := range byTenant {
		if got := s.list(t, s.adminToken, "limit=2&to=client@example.com&tenant_id="+tenant, nil); !slices.Equal(got, newestFirst(ids...)) {
			t.Errorf("%s: got %v, want %v", tenant, got, newestFirst(ids...))
		}
	}
	r := s.do("GET", "/v1/stats", s.adminToken, nil)
	if got := sums(t, r, "hours"); got["sent"] != 12 || len(r.json(t)["partitions"].([]any)) != 6 {
		t.Errorf("stats on the cluster: %v %s", got, r.body)
	}
	if got := sums(t, s.do("GET", "/v1/stats?tenant_id=gamma", s.adminToken, nil), "minutes"); got["sent"] != 3 {
		t.Errorf("gamma's stats on the cluster: %v", got)
	}
}
