package delivery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/outbound-mail/outbound/internal/message"
	"github.com/outbound-mail/outbound/internal/queue"
	"github.com/outbound-mail/outbound/internal/ratelimit"
	"github.com/outbound-mail/outbound/internal/suppression"
	"github.com/outbound-mail/outbound/internal/tenant"
	"github.com/outbound-mail/outbound/internal/transport"
)

// handle delivers one begun entry and records the outcome. An entry
// begun too often without an outcome is failed without a send, and one
// whose outcome this replica could not record before is recorded now
// without a send (see finish). A message whose account is busy is kept
// aside in memory instead (see parking); inTurn marks one coming back.
func (s *Service) handle(ctx context.Context, st queue.Started, inTurn bool) {
	rec := st.Record
	out, remembered := s.unrecorded.take(st.Entry)
	switch {
	case remembered:
	case st.Begun > maxBegins:
		out = s.abandoned(st)
	case !inTurn && s.keptAsideEarly(ctx, st):
		return
	default:
		out = s.deliverGuarded(ctx, st, inTurn)
	}
	if out.Status == keptAside {
		return // its claim stays fresh; a worker takes it up again
	}
	defer s.done(st.Entry)
	// Bookkeeping in Redis must finish even when the send was cut short.
	store, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	out.Unheard = !s.heard(store, rec.TenantID, out.Status)
	cancel()
	if !s.finish(ctx, st, out) {
		return
	}
	if remembered {
		s.log.Info("recorded an outcome Redis did not take earlier; not sent again", "message_id", rec.ID,
			"status", out.Status)
	}
	if out.Status != queue.StatusQueued { // queued: paced, no attempt made
		s.metrics.Message(string(out.Status), out.Route, rec.TenantID)
	}
}

// heard reports whether a webhook listens for the outcome; when that is
// unknown (Redis trouble), the event is kept.
func (s *Service) heard(ctx context.Context, tenantID string, status queue.Status) bool {
	eventType, evented := status.Event()
	if s.listeners == nil || !evented {
		return true
	}
	ok, err := s.listeners.Listens(ctx, tenantID, eventType)
	return ok || err != nil
}

// storedRequest decodes a payload accepted earlier, perhaps by a replica
// that still read requests as encoding/json v1 does (names in any case,
// the last of duplicate names, invalid UTF-8 replaced): whatever was
// accepted must stay readable.
var storedRequest = json.JoinOptions(
	json.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// outgoing is a queued message as delivery reads it: a JSON request to
// compose, or a message handed over by SMTP to send as written.
type outgoing interface {
	// routing is what resolve and the From rule read: tenant, From and
	// Reply-To.
	routing() *message.Request
	// recipients is the envelope, each recipient once.
	recipients() []string
	// render writes the message as it goes on r, and says what it asks
	// of the server.
	render(b *bytes.Buffer, rec queue.Record, r route) (transport.Content, error)
}

// composed is a JSON request (POST /v1/messages), composed as it is sent.
type composed struct{ req *message.Request }

func (c composed) routing() *message.Request { return c.req }
func (c composed) recipients() []string      { return c.req.Recipients() }

func (c composed) render(b *bytes.Buffer, rec queue.Record, r route) (transport.Content, error) {
	return transport.Content{}, message.Compose(b, c.req,
		message.Header{From: r.from, ReplyTo: r.replyTo, MessageID: rec.MessageID, Date: rec.CreatedAt})
}

// readStored decodes the message a record holds, by its kind.
func readStored(rec queue.Record) (outgoing, error) {
	switch rec.Kind {
	case "":
		var req message.Request
		if err := json.Unmarshal(rec.Payload, &req, storedRequest); err != nil {
			return nil, err
		}
		return composed{&req}, nil
	case kindSubmission:
		sub, err := decodeSubmission(rec.TenantID, rec.Payload)
		if err != nil {
			return nil, err
		}
		return sub, nil
	}
	return nil, errors.New("unknown payload kind " + strconv.Quote(rec.Kind))
}

// deliver tries the message once on its route (and once more on the
// default relay when the tenant's login fails and fallback_to_default is
// set) and says what happened. It gathers the facts step by step and
// stops at the first that keeps the message from its send; what each
// makes of the message is decide's.
func (s *Service) deliver(ctx context.Context, st queue.Started, inTurn bool) queue.Outcome {
	rec := st.Record
	f := facts{record: rec, route: rec.Route, attempts: rec.Attempts, jitter: rand.Float64()}
	m, err := readStored(rec)
	if err != nil {
		f.stop, f.detail = stopUnreadable, err.Error()
		return s.decide(f).out
	}
	r, err := s.resolve(ctx, m.routing(), false)
	switch {
	case errors.Is(err, ErrNoRoute):
		f.stop = stopNoRoute
		return s.decide(f).out
	case err != nil:
		f.stop = stopStorage
		return s.decide(f).out
	}
	f.onRoute(r)
	if r.status.Paused() {
		// Woken when the tenant is active again (see tenantChanged).
		f.stop = stopPaused
		return s.decide(f).out
	}
	f.all = m.recipients()
	f.rcpts, f.suppressed, err = s.unsuppressed(ctx, rec.TenantID, pending(f.all, rec))
	switch {
	case err != nil:
		f.stop = stopStorage
		return s.decide(f).out
	case len(f.rcpts) == 0:
		f.stop = stopNoRecipients
		return s.decide(f).out
	}
	if until, held := s.held(r.server.Key()); held {
		f.stop, f.until = stopHeld, until
		return s.decide(f).out
	}
	if until, open := s.circuitOpen(r); open {
		f.stop, f.until = stopCircuit, until
		if v := s.decide(f); !v.fallBack {
			return v.out
		}
		dr, err := s.resolve(ctx, m.routing(), true)
		if err != nil { // Redis trouble: wait for the circuit after all
			f.fallback = false
			return s.decide(f).out
		}
		r = dr
		f.onRoute(r)
		f.stop = attempted
	}
	r.inTurn = inTurn
	if wait, paced := s.paced(ctx, r); paced {
		f.stop, f.wait = stopPaced, wait
		return s.decide(f).out
	}
	return s.sendOn(ctx, st, m, r, f)
}

// sendOn sends the message on r, and once more on the default relay when
// the verdict on the first attempt says to fall back.
func (s *Service) sendOn(ctx context.Context, st queue.Started, m outgoing, r route, f facts) queue.Outcome {
	if !r.inTurn && s.pool.Busy(r.server, r.maxConns()) { // set aside before composing
		return s.setAside(st, r, f)
	}
	var att queue.Attempt
	f.result, att, f.err = s.attempt(ctx, st.Record, m, r, f.rcpts)
	if isBusy(f.err) {
		return s.setAside(st, r, f)
	}
	if f.err != nil && f.err.Code == codeAccountChanged {
		f.stop = stopAccountChanged
		return s.decide(f).out
	}
	f.attempts = append(f.attempts, att)
	v := s.decide(f)
	if v.fallBack {
		dr, err := s.resolve(ctx, m.routing(), true)
		if err != nil { // Redis trouble: the first attempt's outcome stands
			f.fallback = false
		} else {
			r = dr
			f.onRoute(r)
			f.result, att, f.err = s.attempt(ctx, st.Record, m, r, f.rcpts)
			if isBusy(f.err) {
				return s.setAside(st, r, f)
			}
			f.attempts = append(f.attempts, att)
		}
		v = s.decide(f)
	}
	s.suppressBounces(ctx, st.Record.TenantID, f.result.Rejected)
	return v.out
}

// decide is the decision about f now, on this service's policy.
func (s *Service) decide(f facts) verdict { return decide(time.Now(), s.policy(), f) }

// policy is what decide reads of the service's Config.
func (s *Service) policy() policy {
	return policy{retryBase: s.cfg.RetryBase, retryMaxAge: s.cfg.RetryMaxAge, quotaHold: s.cfg.QuotaHold,
		relay: s.cfg.Relay != nil}
}

// onRoute notes the route the message is now on.
func (f *facts) onRoute(r route) {
	f.route = r.name
	f.fallback = r.profile != nil && r.profile.FallbackToDefault
}

// unsuppressed is rcpts less those on the tenant's suppression list, and
// those skipped.
func (s *Service) unsuppressed(ctx context.Context, tenantID string, rcpts []string) ([]string, []queue.Suppression, error) {
	if s.suppress == nil || len(rcpts) == 0 {
		return rcpts, nil, nil
	}
	listed, err := s.suppress.Filter(ctx, tenantID, rcpts)
	if err != nil || len(listed) == 0 {
		return rcpts, nil, err
	}
	kept := rcpts[:0:0]
	var skipped []queue.Suppression
	for _, r := range rcpts {
		if e, ok := listed[r]; ok {
			skipped = append(skipped, queue.Suppression{Email: r, Reason: e.Reason})
		} else {
			kept = append(kept, r)
		}
	}
	return kept, skipped, nil
}

// suppressBounces puts recipients refused as non-existent (5.1.x) on the
// tenant's suppression list.
func (s *Service) suppressBounces(ctx context.Context, tenantID string, rejected []transport.Rejection) {
	if s.suppress == nil {
		return
	}
	for _, r := range rejected {
		if !suppression.HardBounce(r.EnhancedCode) {
			continue
		}
		reason := strconv.Itoa(r.SMTPCode) + " " + r.EnhancedCode + " " + r.Message
		if _, err := s.suppress.Add(ctx, tenantID, suppression.Entry{Email: r.Email, Reason: reason, Source: "bounce",
			Code: r.EnhancedCode}); err != nil {
			s.log.Warn("suppress a hard bounce", "tenant_id", tenantID, "error", err)
		}
	}
}

// composedPool recycles the buffers messages are composed into: a
// composed message lives only while it is sent (transport keeps no part
// of it), and at thousands of messages a second a new buffer each time is
// a good part of what the service allocates.
var composedPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// recycleComposed returns b to the pool, unless a large message grew it:
// one big attachment should not keep its memory for good.
func recycleComposed(b *bytes.Buffer) {
	if b.Cap() <= 256<<10 {
		b.Reset()
		composedPool.Put(b)
	}
}

// attempt composes (or renders, see outgoing) and sends once on r,
// recording the attempt.
func (s *Service) attempt(ctx context.Context, rec queue.Record, m outgoing, r route, rcpts []string) (transport.Result, queue.Attempt, *transport.Error) {
	start := time.Now()
	att := queue.Attempt{At: start.UTC(), Route: r.name}
	body := composedPool.Get().(*bytes.Buffer)
	defer recycleComposed(body)
	body.Grow(len(rec.Payload) + 1024) // the composed message is about the request's size, plus headers
	content, err := m.render(body, rec, r)
	if err != nil {
		terr := &transport.Error{Code: transport.CodeProtocol, Stage: transport.StageData, Message: "compose: " + err.Error(), Err: err}
		att.Error, att.Message = terr.Code, terr.Message
		return transport.Result{}, att, terr
	}
	res, err := s.sendWithToken(ctx, r, rcpts, body.Bytes(), content)
	if errors.Is(err, ErrBusy) {
		return res, att, errAccountBusy
	}
	if errors.Is(err, ErrAccountChanged) {
		return res, att, errAccountChanged
	}
	terr := asTransportError(err)
	// A dial another message made and shared counts, and is shown, once:
	// by that message's attempt.
	shared := errors.As(err, new(*SharedDialError))
	var circuitUntil time.Time
	if !shared {
		circuitUntil, _ = s.noteCircuit(r, terr)
	}
	if terr != nil {
		att.SMTPCode, att.EnhancedCode, att.Message, att.Error, att.Ambiguous =
			terr.SMTPCode, terr.EnhancedCode, terr.Message, terr.Code, terr.Ambiguous
	} else {
		att.SMTPCode, att.Message = 250, res.Reply
	}
	s.metrics.Attempt(r.name, terr == nil, att.Ambiguous, time.Since(start))
	level := slog.LevelInfo
	if terr != nil {
		level = slog.LevelWarn
	}
	s.log.LogAttrs(ctx, level, "delivery attempt",
		slog.String("message_id", rec.ID), slog.String("tenant_id", rec.TenantID), slog.String("route", r.name),
		slog.Int("smtp_code", att.SMTPCode), slog.String("enhanced_code", att.EnhancedCode),
		slog.String("error", att.Error), slog.Bool("ambiguous", att.Ambiguous),
		slog.Int("recipients", len(rcpts)), slog.Int("rejected", len(res.Rejected)), slog.Int("deferred", len(res.Deferred)),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))

	if r.name == RouteTenant && !shared {
		s.noteProfile(ctx, r.profile, terr, circuitUntil)
	}
	if terr != nil && isQuota(terr) {
		s.hold(r.server, s.cfg.QuotaHold)
	}
	if terr != nil {
		return res, att, terr
	}
	return res, att, nil
}

// sendWithToken sends on r, first getting an OAuth2 access token where
// the profile logs in with one. A token the server refuses is dropped from
// the cache and the send tried once more with a fresh one, on a new
// session. Its error is ErrBusy, or holds a *transport.Error.
func (s *Service) sendWithToken(ctx context.Context, r route, rcpts []string, body []byte, ct transport.Content) (transport.Result, error) {
	oauth := r.name == RouteTenant && r.server.Auth == tenant.AuthXOAuth2
	for try := 0; ; try++ {
		if oauth {
			var terr *transport.Error
			if r.server, terr = s.withToken(ctx, r.profile, r.server, true); terr != nil {
				return transport.Result{}, terr
			}
		}
		res, err := s.send(ctx, r, rcpts, body, ct)
		if terr := asTransportError(err); oauth && try == 0 && terr != nil && terr.Code == transport.CodeAuthFailed {
			s.forgetToken(ctx, r.profile)
			continue
		}
		return res, err
	}
}

// asTransportError is err as a *transport.Error; any other error (the
// context ended while waiting for a session) becomes a timeout.
func asTransportError(err error) *transport.Error {
	var terr *transport.Error
	if err != nil && !errors.As(err, &terr) {
		terr = &transport.Error{Code: transport.CodeTimeout, Stage: transport.StageConnect, Message: err.Error(), Err: err}
	}
	return terr
}

// send runs the transaction on a pooled session, within the message's
// time on the account (Config.MessageTimeout: waiting, dialling and the
// transaction together), so a slow server holds a worker for a bounded
// time. A pooled session the server closed while idle fails on its first
// command; the message then goes out on the next session at once and no
// attempt is spent on it.
func (s *Service) send(ctx context.Context, r route, rcpts []string, body []byte, ct transport.Content) (transport.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MessageTimeout)
	defer cancel()
	for range 10 {
		get := s.pool.Get
		if r.inTurn {
			get = s.pool.GetInTurn
		}
		conn, reused, err := get(ctx, r.server, r.maxConns())
		if err != nil {
			return transport.Result{}, err
		}
		res, inTime, err := s.transact(ctx, conn, r.mailFrom, rcpts, body, ct)
		if !inTime {
			s.pool.Put(conn, false)
			s.parking.release(r.server.Key())
			return res, s.outOfTime(err)
		}
		s.pool.Put(conn, conn.Reusable(err))
		s.parking.release(r.server.Key()) // a session is free: the next message kept aside for it
		var terr *transport.Error
		if reused && errors.As(err, &terr) && terr.Stale() {
			continue
		}
		return res, err
	}
	return transport.Result{}, &transport.Error{Code: transport.CodeConnectionLost, Stage: transport.StageMail,
		Message: "every pooled session was closed by the server"}
}

// transact runs one transaction on conn and reports whether it ended
// before ctx did. The transaction's own timeouts are per command; ctx (the
// message's bound) cuts the session wherever it is. A panic closes the
// session and gives its place in the pool back before it goes on up (to
// deliverGuarded): otherwise each panic would keep one of the account's
// sessions for good.
func (s *Service) transact(ctx context.Context, conn *transport.Conn, from string, rcpts []string, body []byte, ct transport.Content) (res transport.Result, inTime bool, err error) {
	cut := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		if v := recover(); v != nil {
			cut()
			s.pool.Put(conn, false)
			panic(v)
		}
	}()
	if s.testPanic != nil {
		s.testPanic(body)
	}
	res, err = conn.SendContent(from, rcpts, body, ct)
	return res, cut(), err
}

// outOfTime is the error of a transaction cut by the message's time bound:
// a timeout, ambiguous where the body had gone. A transaction that ended
// well just as the bound came stays a success.
func (s *Service) outOfTime(err error) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return err
	}
	cut := *terr
	cut.Code = transport.CodeTimeout
	cut.Message = "the server took more than " + s.cfg.MessageTimeout.String() + " for one message: " + terr.Message
	return &cut
}

// codeAccountBusy marks an attempt that found every session of its
// account busy; it is set aside, never recorded.
const codeAccountBusy = "account_busy"

var errAccountBusy = &transport.Error{Code: codeAccountBusy, Stage: transport.StageConnect, Err: ErrBusy}

func isBusy(terr *transport.Error) bool { return terr != nil && terr.Code == codeAccountBusy }

// codeAccountChanged marks an attempt whose account was retired (see
// Pool.Retire) before it got a session; it is routed again, never
// recorded.
const codeAccountChanged = "account_changed"

var errAccountChanged = &transport.Error{Code: codeAccountChanged, Stage: transport.StageConnect, Err: ErrAccountChanged}

// keptAsideEarly keeps a message aside before anything is decoded when
// its tenant's account is plainly busy: under a backlog most messages meet
// a busy account, and each would otherwise be decoded and routed twice.
func (s *Service) keptAsideEarly(ctx context.Context, st queue.Started) bool {
	p, found, status, err := s.profiles.Load(ctx, st.Record.TenantID)
	if err != nil || status.Paused() {
		return false
	}
	srv, maxConns := transport.Server{}, 0
	switch {
	case found && p.Enabled:
		srv, maxConns = transport.FromProfile(p), s.limits.InForce(&p).MaxConnections
	case s.cfg.Relay != nil:
		srv = *s.cfg.Relay
	default:
		return false
	}
	return s.pool.Busy(srv, maxConns) && s.parking.add(srv.Key(), st.Record.TenantID, st)
}

// keptAside is the outcome of a message kept aside in memory (see
// parking): nothing to record.
const keptAside queue.Status = "kept_aside"

// setAside sets a message whose account was busy aside, no attempt spent:
// in memory until one of the account's sessions is free, or, when memory
// is spent or an attempt is to be recorded, back in the queue to come back
// about when the account can take it.
func (s *Service) setAside(st queue.Started, r route, f facts) queue.Outcome {
	rec := st.Record
	key := r.server.Key()
	if len(f.attempts) == len(rec.Attempts) && s.parking.add(key, rec.TenantID, st) {
		return queue.Outcome{Status: keptAside}
	}
	f.stop, f.wait = stopBusy, s.asides.delay(key, rec.TenantID, s.pool.Spacing(r.server, r.maxConns()), time.Now())
	return s.decide(f).out
}

// circuitKey names the account's circuit. A tenant's includes the
// profile's version, so a PUT of the profile starts a closed circuit, and
// begins with the tenant and a slash (tenant ids have none, the relay's
// key has none), so that tenantChanged can find the tenant's.
func circuitKey(r route) string {
	if r.name == RouteTenant {
		return r.profile.TenantID + "/" + r.server.Key() + "/" + strconv.FormatInt(r.profile.Version, 10)
	}
	return r.server.Key()
}

// circuitOpen reports whether the route's account is not to be dialled
// now, and until when. A tenant's open circuit is read from its profile,
// where any replica may have opened it and a PUT or a verify may have
// closed it; the default relay's is this replica's own.
func (s *Service) circuitOpen(r route) (time.Time, bool) {
	now := time.Now()
	if r.name == RouteTenant {
		if le := r.profile.LastError; le != nil && le.Code == CodeCircuitOpen && le.RetryAt.After(now) {
			return le.RetryAt, true
		}
		return time.Time{}, false
	}
	return s.circuits.open(circuitKey(r), now)
}

// noteCircuit counts an attempt's session set-up for its account's
// circuit: a failure to connect, secure or be greeted counts against it,
// anything else shows the server answers and closes it. It reports when a
// failure opened the circuit.
func (s *Service) noteCircuit(r route, terr *transport.Error) (until time.Time, opened bool) {
	if terr == nil || !isCircuitFault(terr) {
		if s.circuits.any() { // the common case has nothing to close: skip the key's hash
			s.circuits.succeeded(circuitKey(r))
		}
		return time.Time{}, false
	}
	key := circuitKey(r)
	var lastOpenFor time.Duration
	if r.name == RouteTenant {
		if le := r.profile.LastError; le != nil && le.Code == CodeCircuitOpen {
			lastOpenFor = le.RetryAt.Sub(le.At)
		}
	}
	until, opened = s.circuits.failed(key, time.Now(), lastOpenFor)
	if opened { // what waits for the account in memory waits for the circuit instead
		account := r.server.Key()
		s.parking.releaseWhere(func(a, _ string) bool { return a == account })
	}
	return until, opened
}

// isCircuitFault reports failures of a session before the login: the
// server is unreachable, silent or broken, whoever's message it was.
func isCircuitFault(e *transport.Error) bool {
	switch e.Stage {
	case transport.StageConnect, transport.StageTLS, transport.StageGreet:
		return true
	}
	return false
}

// paced reports whether the tenant's account must wait for its pace
// (pace_per_minute, or its provider's), and how long. A limiter failure does not hold mail.
func (s *Service) paced(ctx context.Context, r route) (time.Duration, bool) {
	if r.name != RouteTenant || r.limits.PacePerMinute <= 0 {
		return 0, false
	}
	res, err := s.limiter.Pace(ctx, r.server.Key(), r.limits.PacePerMinute)
	var denied *ratelimit.DeniedError
	if errors.As(err, &denied) {
		return res.RetryAfter, true
	}
	if err != nil {
		s.log.Warn("pace check failed; sending anyway", "tenant_id", r.profile.TenantID, "error", err)
	}
	return 0, false
}

// noteProfile shows a failure caused by the profile on the profile, and
// clears it after the next success. circuitUntil, when set, is when the
// circuit this failure opened lets a connection through again.
func (s *Service) noteProfile(ctx context.Context, p *tenant.Profile, terr *transport.Error, circuitUntil time.Time) {
	now := time.Now().UTC()
	var le *tenant.LastError
	switch {
	case terr != nil && !circuitUntil.IsZero():
		le = circuitError(terr, now, circuitUntil)
	case terr != nil && isProfileFault(terr):
		if cur := p.LastError; cur != nil && cur.Code == CodeCircuitOpen && cur.RetryAt.After(now) {
			return // an attempt begun before the circuit opened: the open circuit says more
		}
		le = &tenant.LastError{Code: terr.Code, SMTPCode: terr.SMTPCode, EnhancedCode: terr.EnhancedCode,
			Message: terr.Message, Hint: terr.Hint, At: now}
	case terr == nil && p.LastError != nil:
	default:
		return
	}
	store, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.profiles.SetLastError(store, p.TenantID, p.Version, le); err != nil {
		s.log.Warn("record profile error", "tenant_id", p.TenantID, "error", err)
	}
}

// circuitError is the profile error of an account whose circuit terr
// opened: what failed, and when delivery tries again.
func circuitError(terr *transport.Error, now, until time.Time) *tenant.LastError {
	at := until.UTC().Format(time.RFC3339)
	hint := "Outbound stopped connecting to this server after it failed to answer several times in a row; " +
		"messages wait, and it tries again at " + at + ". Saving the profile or a successful test connection (verify) tries at once."
	if terr.Hint != "" {
		hint = terr.Hint + " " + hint
	}
	return &tenant.LastError{Code: CodeCircuitOpen, SMTPCode: terr.SMTPCode, EnhancedCode: terr.EnhancedCode,
		Message: "no new connection until " + at + "; last failure: " + summary(terr), Hint: hint, At: now, RetryAt: until.UTC()}
}

// quotaHold is an account paused after a sending-quota reply; tenant is
// whose account it is ("" for the default relay).
type quotaHold struct {
	until  time.Time
	tenant string
}

func (s *Service) hold(srv transport.Server, d time.Duration) {
	s.holdMu.Lock()
	s.holds[srv.Key()] = quotaHold{until: time.Now().Add(d), tenant: srv.Tenant}
	s.holdMu.Unlock()
}

func (s *Service) held(key string) (time.Time, bool) {
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	h, ok := s.holds[key]
	if ok && time.Now().After(h.until) {
		delete(s.holds, key)
		return time.Time{}, false
	}
	return h.until, ok
}
