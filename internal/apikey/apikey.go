// Package apikey parses the API keys an operator configures and checks
// bearer tokens against them. Only SHA-256 hashes of tokens are configured,
// so the environment of a running service does not hold usable tokens.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// Scope is what a key may do.
type Scope string

const (
	// ScopeSend may post messages and read their status.
	ScopeSend Scope = "send"
	// ScopeAdmin may do everything, including managing tenant profiles.
	// Bound to a tenant ("admin@acme") it is that tenant's own admin, and
	// what stays the operator's is refused to it (see Operator).
	ScopeAdmin Scope = "admin"
)

// Key is one configured API key.
type Key struct {
	Name  string
	Scope Scope
	// Tenant, when set, binds the key to one tenant ("send@acme"): it may
	// only act on that tenant's messages and settings.
	Tenant string
	Hash   [sha256.Size]byte
}

// AllowsTenant reports whether the key may act for tenantID.
func (k Key) AllowsTenant(tenantID string) bool {
	return k.Tenant == "" || k.Tenant == tenantID
}

// Operator reports whether the key is the operator's: admin and bound to
// no tenant. Only the operator may act across tenants or on what the
// tenants share: pausing and resuming, limits above those in force,
// entries a bounce added to a suppression list, webhooks.
func (k Key) Operator() bool { return k.Scope == ScopeAdmin && k.Tenant == "" }

// Allows reports whether the key may act within scope; admin implies send.
func (k Key) Allows(scope Scope) bool {
	return k.Scope == ScopeAdmin || k.Scope == scope
}

// Entry renders the key in its configuration form "name:scope:sha256hex"
// or "name:scope@tenant:sha256hex".
func (k Key) Entry() string {
	scope := string(k.Scope)
	if k.Tenant != "" {
		scope += "@" + k.Tenant
	}
	return k.Name + ":" + scope + ":" + hex.EncodeToString(k.Hash[:])
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Parse reads a comma-separated list of "name:scope:sha256hex" entries.
func Parse(list string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		k, err := parseEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if seen[k.Name] {
			return nil, fmt.Errorf("entry %d: name %q used twice", i+1, k.Name)
		}
		seen[k.Name] = true
		keys = append(keys, k)
	}
	return keys, nil
}

func parseEntry(entry string) (Key, error) {
	parts := strings.Split(entry, ":")
	if len(parts) != 3 {
		return Key{}, fmt.Errorf("want name:scope:sha256hex, got %d part(s)", len(parts))
	}
	name, sum := parts[0], parts[2]
	scopeText, tenant, bound := strings.Cut(parts[1], "@")
	scope := Scope(scopeText)
	if !namePattern.MatchString(name) {
		return Key{}, fmt.Errorf("name %q: use letters, digits, '.', '_' or '-'", name)
	}
	if bound && !namePattern.MatchString(tenant) {
		return Key{}, fmt.Errorf("key %q: %q is not a tenant id", name, tenant)
	}
	if scope != ScopeSend && scope != ScopeAdmin {
		return Key{}, fmt.Errorf("key %q: scope %q is neither send nor admin", name, scope)
	}
	raw, err := hex.DecodeString(sum)
	if err != nil || len(raw) != sha256.Size {
		// The hash itself is not secret, but an operator who pasted the
		// token here by mistake should not see it echoed into logs.
		return Key{}, fmt.Errorf("key %q: third part is not a hex SHA-256 (64 hex digits)", name)
	}
	k := Key{Name: name, Scope: scope, Tenant: tenant}
	copy(k.Hash[:], raw)
	return k, nil
}

// Set is the configured keys.
type Set []Key

// Lookup finds the key whose hash matches token. It compares against every
// key with constant-time comparison and does not stop at the first match, so
// the time taken says nothing about which key, or how much of a hash,
// matched.
func (s Set) Lookup(token string) (Key, bool) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range s {
		if subtle.ConstantTimeCompare(sum[:], s[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 || token == "" {
		return Key{}, false
	}
	return s[found], true
}

// tokenPrefix makes tokens recognisable to secret scanners and people.
const tokenPrefix = "obk_"

// Generate returns a new random token and the key entry that accepts it.
// scope may carry a tenant: "send@acme".
func Generate(name string, scope Scope) (token string, key Key, err error) {
	scopeText, tenant, bound := strings.Cut(string(scope), "@")
	scope = Scope(scopeText)
	if bound && !namePattern.MatchString(tenant) {
		return "", Key{}, fmt.Errorf("apikey: %q is not a tenant id", tenant)
	}
	if !namePattern.MatchString(name) {
		return "", Key{}, fmt.Errorf("apikey: name %q: use letters, digits, '.', '_' or '-'", name)
	}
	if scope != ScopeSend && scope != ScopeAdmin {
		return "", Key{}, fmt.Errorf("apikey: scope %q is neither send nor admin", scope)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Key{}, fmt.Errorf("apikey: %w", err)
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	return token, Key{Name: name, Scope: scope, Tenant: tenant, Hash: sha256.Sum256([]byte(token))}, nil
}
