package apikey

import (
	"strings"
	"testing"
)

func TestGenerateThenLookup(t *testing.T) {
	sendTok, sendKey, err := Generate("billing", ScopeSend)
	if err != nil {
		t.Fatal(err)
	}
	adminTok, adminKey, _ := Generate("ops", ScopeAdmin)

	keys, err := Parse(sendKey.Entry() + ", " + adminKey.Entry())
	if err != nil {
		t.Fatal(err)
	}
	set := Set(keys)

	if k, ok := set.Lookup(sendTok); !ok || k.Name != "billing" || !k.Allows(ScopeSend) || k.Allows(ScopeAdmin) {
		t.Errorf("send token: %+v %v", k, ok)
	}
	if k, ok := set.Lookup(adminTok); !ok || k.Name != "ops" || !k.Allows(ScopeSend) || !k.Allows(ScopeAdmin) {
		t.Errorf("admin token: %+v %v", k, ok)
	}
	for _, bad := range []string{"", "obk_nope", sendTok + "x", strings.ToUpper(sendTok)} {
		if _, ok := set.Lookup(bad); ok {
			t.Errorf("token %q accepted", bad)
		}
	}
	if strings.Contains(sendKey.Entry(), sendTok) {
		t.Error("entry contains the token")
	}
}

func TestParseRejects(t *testing.T) {
	good := strings.Repeat("ab", 32)
	cases := map[string]string{
		"two parts":      "a:send",
		"bad scope":      "a:root:" + good,
		"bad hash":       "a:send:xyz",
		"short hash":     "a:send:abcd",
		"bad name":       "a b:send:" + good,
		"duplicate name": "a:send:" + good + ",a:admin:" + good,
		"bad tenant":     "a:send@-x:" + good,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(in); err == nil {
				t.Errorf("Parse(%q) accepted", in)
			}
		})
	}
	if keys, err := Parse(" , "); err != nil || len(keys) != 0 {
		t.Errorf("empty list: %v %v", keys, err)
	}
}

func TestTenantBoundKeys(t *testing.T) {
	tok, key, err := Generate("acme-billing", "send@acme")
	if err != nil {
		t.Fatal(err)
	}
	if key.Entry()[:len("acme-billing:send@acme:")] != "acme-billing:send@acme:" {
		t.Fatalf("entry %s", key.Entry())
	}
	keys, err := Parse(key.Entry())
	if err != nil {
		t.Fatal(err)
	}
	k, ok := Set(keys).Lookup(tok)
	if !ok || k.Tenant != "acme" || k.Scope != ScopeSend || !k.AllowsTenant("acme") || k.AllowsTenant("other") {
		t.Fatalf("%+v", k)
	}
	if !(Key{Scope: ScopeAdmin}).AllowsTenant("anyone") {
		t.Fatal("an unbound key is refused a tenant")
	}
}

func TestOperatorIsAdminBoundToNoTenant(t *testing.T) {
	for _, tc := range []struct {
		key  Key
		want bool
	}{
		{Key{Scope: ScopeAdmin}, true},
		{Key{Scope: ScopeAdmin, Tenant: "acme"}, false},
		{Key{Scope: ScopeSend}, false},
		{Key{Scope: ScopeSend, Tenant: "acme"}, false},
	} {
		if got := tc.key.Operator(); got != tc.want {
			t.Errorf("%+v: Operator() = %v", tc.key, got)
		}
	}
}
