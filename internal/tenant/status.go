package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/outbound-mail/outbound/internal/outage"
)

// Sending states of a tenant.
const (
	SendingActive = "active"
	SendingPaused = "paused"
)

// ErrPaused means the tenant's sending is paused. A refusal for that
// reason is a *PausedError, which gives the operator's reason.
var ErrPaused = errors.New("tenant: sending is paused")

// PausedError refuses a message of a paused tenant. It matches ErrPaused.
type PausedError struct{ Reason string }

func (e *PausedError) Error() string { return ErrPaused.Error() + ": " + e.Reason }

// Is makes errors.Is(err, ErrPaused) hold.
func (e *PausedError) Is(target error) bool { return target == ErrPaused }

// Status is whether a tenant may send. A paused tenant's new messages are
// refused and its queued ones wait; none is failed.
type Status struct {
	Sending   string    `json:"sending"`
	Reason    string    `json:"reason,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Paused reports whether sending is paused.
func (s Status) Paused() bool { return s.Sending == SendingPaused }

func statusKey(tenantID string) string { return "outbound:tenant:{" + tenantID + "}:status" }

// SetStatus stores the tenant's sending status.
func (s *Store) SetStatus(ctx context.Context, tenantID string, st Status) (_ Status, err error) {
	defer outage.Mark(&err)
	if !ValidID(tenantID) {
		return Status{}, ErrInvalidID
	}
	st.UpdatedAt = s.now().UTC().Truncate(time.Millisecond)
	if err := MarkKnown(ctx, s.rdb, tenantID); err != nil {
		return Status{}, err
	}
	err = s.rdb.HSet(ctx, statusKey(tenantID), "sending", st.Sending, "reason", st.Reason,
		"updated_at", st.UpdatedAt.Format(time.RFC3339Nano)).Err()
	if err != nil {
		return Status{}, fmt.Errorf("tenant: status %s: %w", tenantID, err)
	}
	s.changed(ctx, tenantID)
	kind := ChangeResumed
	if st.Paused() {
		kind = ChangePaused
	}
	s.emit(ctx, Change{TenantID: tenantID, Kind: kind})
	return st, nil
}

// Load returns the tenant's profile (found false when it has none) and
// its sending status, in one round trip.
func (s *Store) Load(ctx context.Context, tenantID string) (p Profile, found bool, st Status, err error) {
	defer outage.Mark(&err)
	if !ValidID(tenantID) {
		return Profile{}, false, Status{}, ErrInvalidID
	}
	if s.cache != nil {
		l, err := s.cache.Get(ctx, tenantID, func(ctx context.Context) (loaded, error) {
			p, found, st, err := s.load(ctx, tenantID)
			return loaded{profile: p, found: found, status: st}, err
		})
		return l.profile, l.found, l.status, err
	}
	return s.load(ctx, tenantID)
}

func (s *Store) load(ctx context.Context, tenantID string) (p Profile, found bool, st Status, err error) {
	l, err := s.loads.Do(ctx, tenantID)
	if err == nil {
		err = l.err
	}
	return l.profile, l.found, l.status, err
}

// loadMany reads tenants whose loads arrived together (a burst of cache
// misses: a restart, or many new tenants at once) in one pipeline.
func (s *Store) loadMany(ctx context.Context, tenantIDs []string) ([]loaded, error) {
	pipe := s.rdb.Pipeline()
	profs := make([]*redis.MapStringStringCmd, len(tenantIDs))
	stats := make([]*redis.MapStringStringCmd, len(tenantIDs))
	for i, id := range tenantIDs {
		profs[i] = pipe.HGetAll(ctx, Key(id))
		stats[i] = pipe.HGetAll(ctx, statusKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("tenant: load %d tenants: %w", len(tenantIDs), err)
	}
	out := make([]loaded, len(tenantIDs))
	for i, id := range tenantIDs {
		out[i].status = decodeStatus(stats[i].Val())
		if len(profs[i].Val()) > 0 {
			out[i].profile, out[i].err = s.decode(id, profs[i].Val())
			out[i].found = out[i].err == nil
		}
	}
	return out, nil
}

// GetStatus returns the tenant's sending status (active when never set).
func (s *Store) GetStatus(ctx context.Context, tenantID string) (_ Status, err error) {
	defer outage.Mark(&err)
	if !ValidID(tenantID) {
		return Status{}, ErrInvalidID
	}
	h, err := s.rdb.HGetAll(ctx, statusKey(tenantID)).Result()
	if err != nil {
		return Status{}, fmt.Errorf("tenant: status %s: %w", tenantID, err)
	}
	return decodeStatus(h), nil
}

func decodeStatus(h map[string]string) Status {
	st := Status{Sending: SendingActive}
	if h["sending"] == SendingPaused {
		st.Sending = SendingPaused
	}
	st.Reason = h["reason"]
	st.UpdatedAt, _ = time.Parse(time.RFC3339Nano, h["updated_at"])
	return st
}
