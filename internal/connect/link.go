package connect

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/outage"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/validation"
)

// Bounds of a link.
const (
	// DefaultLifetime is how long a link works when its request names none.
	DefaultLifetime = time.Hour
	// MinLifetime and MaxLifetime bound expires_in: long enough to find an
	// App Password, short enough that a forgotten link soon stops working.
	MinLifetime = time.Minute
	MaxLifetime = 7 * 24 * time.Hour
	// MaxAttempts is how many tests and saves one link allows, so a link
	// cannot be used to probe servers or guess passwords without end.
	MaxAttempts = 20
	// afterlife is how long a link's record outlives its expiry, so its
	// page can still say "expired" and give the way back to the product.
	afterlife = 24 * time.Hour
)

// Errors of Open and Spend. A link that is not found gives no way back.
var (
	ErrLinkNotFound = errors.New("connect: no such link")
	ErrLinkExpired  = errors.New("connect: link expired")
	ErrLinkUsedUp   = errors.New("connect: link has no attempts left")
	ErrLinkDone     = errors.New("connect: link already saved a profile")
)

// Link is a stored link, found by its token.
type Link struct {
	hash      string // hex SHA-256 of the token: the only form of it stored
	TenantID  string
	ReturnURL string
	Locale    string // "" lets the browser choose
	ExpiresAt time.Time
	Attempts  int    // tests and saves so far
	Done      bool   // a profile was saved through the link
	CSRF      string // the forms' token, bound to this link
}

// Links keeps connect links in Redis, one hash per link under the hash of
// its token, with a TTL: a leaked Redis dump holds no working link.
type Links struct {
	rdb       redis.UniversalClient
	publicURL string
	allow     []*url.URL
	now       func() time.Time
}

// NewLinks stores links in rdb; their URLs start with publicURL, their
// return URLs with one of returnPrefixes (config's
// OUTBOUND_CONNECT_RETURN_URLS, already validated).
func NewLinks(rdb redis.UniversalClient, publicURL string, returnPrefixes []string) *Links {
	l := &Links{rdb: rdb, publicURL: strings.TrimSuffix(publicURL, "/"), now: time.Now}
	for _, p := range returnPrefixes {
		if u, err := url.Parse(p); err == nil {
			l.allow = append(l.allow, u)
		}
	}
	return l
}

func linkKey(hash string) string { return "outbound:connect:{" + hash + "}" }

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand's documentation)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create stores a new link for tenantID and returns its URL and expiry.
// A zero lifetime is DefaultLifetime. Bad input is a *validation.Error
// naming return_url, locale or expires_in.
func (l *Links) Create(ctx context.Context, tenantID, returnURL, locale string, lifetime time.Duration) (_ string, _ time.Time, err error) {
	defer outage.Mark(&err)
	if !tenant.ValidID(tenantID) {
		return "", time.Time{}, tenant.ErrInvalidID
	}
	var errs validation.Error
	switch {
	case returnURL == "":
		errs.Add("return_url", "required", "the product page the tenant goes back to")
	case !l.allowed(returnURL):
		errs.Add("return_url", "return_url_not_allowed", "must start with one of the prefixes in OUTBOUND_CONNECT_RETURN_URLS")
	}
	if locale != "" && !lang.Known(locale) {
		errs.Add("locale", "invalid_value", `must be "en" or "ar"`)
	}
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	if lifetime < MinLifetime || lifetime > MaxLifetime {
		errs.Add("expires_in", "out_of_range", fmt.Sprintf("must be from %d to %d seconds", int(MinLifetime.Seconds()), int(MaxLifetime.Seconds())))
	}
	if err := errs.Err(); err != nil {
		return "", time.Time{}, err
	}
	token := randomToken()
	expires := l.now().Add(lifetime).Truncate(time.Second)
	key := linkKey(hashToken(token))
	_, err = l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "tenant", tenantID, "return_url", returnURL, "locale", locale,
			"expires_at", strconv.FormatInt(expires.Unix(), 10), "attempts", 0, "csrf", randomToken())
		p.Expire(ctx, key, lifetime+afterlife)
		return nil
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("connect: create link: %w", err)
	}
	return l.publicURL + "/connect/" + token, expires, nil
}

// allowed says whether u starts with an allowed prefix, compared as URLs
// (same scheme and host, path under the prefix's), not as strings.
func (l *Links) allowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Fragment != "" || u.Host == "" {
		return false
	}
	// A dot segment would climb out of the prefix once the browser
	// resolves it (/settings/../admin).
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	for _, p := range l.allow {
		if strings.EqualFold(u.Scheme, p.Scheme) && strings.EqualFold(u.Host, p.Host) && strings.HasPrefix(u.EscapedPath(), p.EscapedPath()) {
			return true
		}
	}
	return false
}

// origins are the allowed return URLs' origins: the pages that may frame
// the connect page and receive its forms' redirects.
func (l *Links) origins() []string {
	var out []string
	for _, p := range l.allow {
		o := p.Scheme + "://" + p.Host
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// Open finds the link of token. An expired, used-up or done link is
// returned with its error, so the page can still give the way back.
func (l *Links) Open(ctx context.Context, token string) (_ Link, err error) {
	defer outage.Mark(&err)
	hash := hashToken(token)
	h, err := l.rdb.HGetAll(ctx, linkKey(hash)).Result()
	if err != nil {
		return Link{}, fmt.Errorf("connect: open link: %w", err)
	}
	if h["tenant"] == "" {
		return Link{}, ErrLinkNotFound
	}
	exp, _ := strconv.ParseInt(h["expires_at"], 10, 64)
	attempts, _ := strconv.Atoi(h["attempts"])
	link := Link{hash: hash, TenantID: h["tenant"], ReturnURL: h["return_url"], Locale: h["locale"],
		ExpiresAt: time.Unix(exp, 0), Attempts: attempts, Done: h["done"] == "1", CSRF: h["csrf"]}
	return link, link.state(l.now())
}

func (k Link) state(now time.Time) error {
	switch {
	case k.Done:
		return ErrLinkDone
	case !now.Before(k.ExpiresAt):
		return ErrLinkExpired
	case k.Attempts >= MaxAttempts:
		return ErrLinkUsedUp
	}
	return nil
}

// spendScript counts an attempt on a link that still exists: a bare
// HINCRBY on a key that just expired would make a new one without a TTL.
var spendScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)`)

// Spend counts one test or save against the link; ErrLinkUsedUp when none
// was left.
func (l *Links) Spend(ctx context.Context, k Link) (err error) {
	defer outage.Mark(&err)
	n, err := spendScript.Run(ctx, l.rdb, []string{linkKey(k.hash)}).Int64()
	if err != nil {
		return fmt.Errorf("connect: spend attempt: %w", err)
	}
	switch {
	case n < 0:
		return ErrLinkNotFound
	case n > MaxAttempts:
		return ErrLinkUsedUp
	}
	return nil
}

// Finish marks the link done: it saved a profile and works no more.
func (l *Links) Finish(ctx context.Context, k Link) (err error) {
	defer outage.Mark(&err)
	if err := l.rdb.HSet(ctx, linkKey(k.hash), "done", "1").Err(); err != nil {
		return fmt.Errorf("connect: finish link: %w", err)
	}
	return nil
}
