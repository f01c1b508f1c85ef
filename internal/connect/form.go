package connect

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outbound-mail/outbound/internal/lang"
	"github.com/outbound-mail/outbound/internal/provider"
	"github.com/outbound-mail/outbound/internal/secret"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
	"github.com/outbound-mail/outbound/internal/validation"
)

// other is the choice of a server the provider table does not know.
const other = "other"

// verifyTimeout bounds one test, so a server that never answers does not
// hold the person's browser for the SMTP timeouts' sum.
const verifyTimeout = 30 * time.Second

// session is one request on a link's page.
type session struct {
	*Page
	w      http.ResponseWriter
	r      *http.Request
	link   Link
	loc    lang.Words
	action string // the page's own path, where its forms post
}

// submit answers one of the page's buttons.
func (s *session) submit(action string) {
	f := s.r.PostForm
	switch action {
	case "next":
		name := f.Get("provider")
		email := strings.TrimSpace(f.Get("email"))
		if name == "" {
			if pr, ok := s.suggest(s.r.Context(), email); ok {
				name = pr.Name
			} else if email != "" {
				name = other
			}
		}
		if !knownChoice(name) {
			s.choose(email, "", true)
			return
		}
		s.form(s.prefill(name, email), nil, nil, http.StatusOK)
	case "back":
		s.choose(strings.TrimSpace(f.Get("email")), f.Get("provider"), false)
	case "cancel":
		http.Redirect(s.w, s.r, returnTo(s.link, "cancelled"), http.StatusSeeOther)
	case "test", "save":
		s.testOrSave(action == "save")
	case "signin":
		s.signIn()
	default:
		s.choose("", "", false)
	}
}

// start is the first step, with the stored account's address and
// provider chosen when the tenant has one (reconnecting after a password
// change, say).
func (s *session) start() {
	stored, found, err := s.stored(s.r.Context())
	if err != nil || !found {
		s.choose("", "", false)
		return
	}
	chosen := stored.Provider
	if chosen == "" {
		chosen = other
		if pr, ok := provider.ForHost(stored.Host); ok {
			chosen = pr.Name
		}
	}
	s.choose(stored.Email, chosen, false)
}

// values are the form's fields as typed; the password is never one of them.
type values struct {
	Provider   string
	SenderName string
	Email      string
	Username   string
	Host       string
	Port       string
	Enabled    bool
}

// fromChoice is the form for a provider just chosen: its server prefilled,
// or empty for another server.
func fromChoice(name, email string) values {
	v := values{Provider: name, Email: email, Username: email, Enabled: true}
	if pr, ok := provider.ByName(name); ok {
		v.Host, v.Port = pr.Host, strconv.Itoa(pr.Port)
	}
	return v
}

// prefill is the form for the chosen provider: the stored account's
// values when it is on that provider (its password stays unshown and is
// kept by a blank one), else the provider's server.
func (s *session) prefill(name, email string) values {
	stored, found, err := s.stored(s.r.Context())
	if err != nil || !found || (stored.Provider != name && (stored.Provider != "" || name != other)) {
		return fromChoice(name, email)
	}
	v := values{Provider: name, SenderName: stored.SenderName, Email: stored.Email, Username: stored.Username,
		Host: stored.Host, Port: strconv.Itoa(stored.Port), Enabled: stored.Enabled}
	if email != "" && email != stored.Email {
		v.Email, v.Username = email, email
	}
	return v
}

func (s *session) posted() values {
	f := s.r.PostForm
	name := f.Get("provider")
	if !knownChoice(name) {
		name = other
	}
	return values{Provider: name, SenderName: strings.TrimSpace(f.Get("sender_name")), Email: strings.TrimSpace(f.Get("email")),
		Username: strings.TrimSpace(f.Get("username")), Host: strings.TrimSpace(f.Get("host")),
		Port: strings.TrimSpace(f.Get("port")), Enabled: f.Get("enabled") == "on"}
}

func knownChoice(name string) bool {
	_, ok := provider.ByName(name)
	return ok || name == other
}

// testOrSave verifies the typed account and, for Save, stores it and
// sends the person back to the product.
func (s *session) testOrSave(save bool) {
	v := s.posted()
	ctx := s.r.Context()
	password := secret.New(s.r.PostForm.Get("password"))
	stored, found, err := s.stored(ctx)
	if err != nil {
		s.unavailable(s.w, s.loc, err)
		return
	}
	p, err := tenant.Build(s.link.TenantID, v.input(password, stored, found), storedOrNil(stored, found))
	var verr *validation.Error
	if errors.As(err, &verr) {
		s.form(v, verr.Fields, nil, http.StatusUnprocessableEntity)
		return
	}
	if err != nil {
		s.unavailable(s.w, s.loc, err)
		return
	}
	// Only a test that dials counts against the link's attempts.
	if err := s.links.Spend(ctx, s.link); errors.Is(err, ErrLinkUsedUp) {
		s.renderGone(s.w, s.loc, s.link, err)
		return
	} else if errors.Is(err, ErrLinkNotFound) {
		s.render(s.w, gone(s.loc, "not_found", ""), http.StatusNotFound)
		return
	} else if err != nil {
		s.unavailable(s.w, s.loc, err)
		return
	}
	s.link.Attempts++
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	verified, err := s.verifier.Verify(vctx, p, false)
	cancel()
	var te *transport.Error
	if errors.As(err, &te) {
		s.log.Info("connect page: test failed", "tenant_id", s.link.TenantID, "code", te.Code, "smtp_code", te.SMTPCode)
		s.form(v, nil, &outcome{err: te}, http.StatusOK)
		return
	}
	if err != nil {
		s.unavailable(s.w, s.loc, err)
		return
	}
	if !save {
		s.form(v, nil, &outcome{ok: verified}, http.StatusOK)
		return
	}
	if err := s.save(ctx, v, password); err != nil {
		if errors.As(err, &verr) {
			s.form(v, verr.Fields, nil, http.StatusUnprocessableEntity)
			return
		}
		s.unavailable(s.w, s.loc, err)
		return
	}
	if err := s.links.Finish(ctx, s.link); err != nil {
		// Saved all the same: the link stays usable until it expires.
		s.log.Warn("connect page: finish link", "tenant_id", s.link.TenantID, "error", err)
	}
	http.Redirect(s.w, s.r, returnTo(s.link, "connected"), http.StatusSeeOther)
}

// save stores the profile as PUT /v1/tenants/{id}/smtp does: built over
// the stored profile (whose password is kept only for the same server)
// and written with the version it was built from, so a concurrent change
// is not overwritten but built over again. The store's write tells every
// replica (tenant.Store.Watch), which applies the tenant-change rules.
func (s *session) save(ctx context.Context, v values, password secret.String) error {
	return s.saveWith(ctx, func(stored tenant.Profile, found bool) tenant.Input { return v.input(password, stored, found) })
}

// saveWith stores the profile built from input over the stored one, as
// save does; the sign-in saves its grant through it too.
func (s *session) saveWith(ctx context.Context, input func(stored tenant.Profile, found bool) tenant.Input) error {
	for range 3 {
		stored, found, err := s.stored(ctx)
		if err != nil {
			return err
		}
		p, err := tenant.Build(s.link.TenantID, input(stored, found), storedOrNil(stored, found))
		if err != nil {
			return err
		}
		_, err = s.profiles.Put(ctx, p, p.Version)
		if errors.Is(err, tenant.ErrVersionConflict) {
			continue
		}
		return err
	}
	return errors.New("connect: save: the profile kept changing")
}

func (s *session) stored(ctx context.Context) (tenant.Profile, bool, error) {
	p, err := s.profiles.Get(ctx, s.link.TenantID)
	if errors.Is(err, tenant.ErrNotFound) {
		return tenant.Profile{}, false, nil
	}
	return p, err == nil, err
}

func storedOrNil(p tenant.Profile, found bool) *tenant.Profile {
	if !found {
		return nil
	}
	return &p
}

// input is the form as a profile input. What the page does not show (an
// operator's limits, fallback to the default relay) carries over from the
// stored profile: the page changes the account, never the limits a
// tenant's admin could not raise through the API either.
func (v values) input(password secret.String, stored tenant.Profile, found bool) tenant.Input {
	in := tenant.Input{Enabled: &v.Enabled, SenderName: v.SenderName, Email: v.Email, Username: v.Username,
		Password: password, Host: v.Host}
	if v.Provider != other {
		in.Provider = v.Provider
	}
	if v.Port != "" {
		// A port that is not a number is out of range: Build says so.
		if n, err := strconv.Atoi(v.Port); err == nil && n > 0 {
			in.Port = n
		} else {
			in.Port = -1
		}
	}
	if found {
		in.FallbackToDefault = stored.FallbackToDefault
		in.RateLimit = stored.RateLimit
		in.MaxConnections = stored.MaxConnections
		in.PacePerMinute = stored.PacePerMinute
	}
	return in
}
