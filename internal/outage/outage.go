// Package outage tells a storage outage from every other error: the
// packages that talk to Redis (tenant, queue, suppression, webhook) mark
// the errors they return with ErrUnavailable when Redis refused, timed out,
// was unreachable or not ready, so that their callers (the api answering
// 503, a worker deciding to retry) branch on one sentinel and never on
// go-redis's error types or an error's text.
package outage

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is matched (errors.Is) by every error of an operation
// that failed because storage was unreachable, too slow or not ready:
// trying again shortly may succeed, and nothing about the request was
// wrong.
var ErrUnavailable = errors.New("storage unavailable")

// unavailable is an outage's error: its text and chain are the original's,
// so logs read the same and errors.Is(err, redis.Nil) still works.
type unavailable struct{ err error }

func (e *unavailable) Error() string        { return e.err.Error() }
func (e *unavailable) Unwrap() error        { return e.err }
func (e *unavailable) Is(target error) bool { return target == ErrUnavailable }

// Mark makes *err match ErrUnavailable when it is an outage. Call it
// deferred, with the named error result of a method that talks to Redis:
//
//	func (s *Store) Get(ctx context.Context, id string) (_ Thing, err error) {
//		defer outage.Mark(&err)
func Mark(err *error) {
	if *err != nil && !errors.Is(*err, ErrUnavailable) && isOutage(*err) {
		*err = &unavailable{err: *err}
	}
}

// isOutage recognises Redis refusing or dropping the connection, a
// timeout (the command's, the caller's deadline, or the client's pool
// exhausted while Redis is down), a closed client, and a server that
// cannot serve yet: loading its data, a read-only or stale replica, a
// cluster with slots down or migrating.
func isOutage(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) ||
		redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
		redis.IsTryAgainError(err) || redis.IsMasterDownError(err)
}
