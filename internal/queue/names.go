package queue

import (
	"regexp"
	"slices"
	"strings"
)

// This file holds the names the queue shares with its Lua scripts, with
// the webhook package and with openapi.yaml: the statuses, the event types
// built from them, and the consumer groups. The scripts take them from here
// (luaNames), and api's agreement test holds openapi.yaml and the README to
// them, so each is spelt once.
//
// A new status is a constant here, a place in Statuses (and in Final if
// it is final); a webhook hears of it once it is in eventStatuses. Then
// openapi.yaml's Status enum (and, for an event, the webhook events enum)
// and the README's list of event types name it, as TestNamesAgree in api
// checks; the scripts, webhook.EventTypes and delivery follow by themselves.

// Status is where a message is in its life.
type Status string

const (
	StatusScheduled  Status = "scheduled" // held until its send_at
	StatusQueued     Status = "queued"
	StatusSending    Status = "sending"
	StatusDeferred   Status = "deferred"
	StatusSent       Status = "sent"
	StatusFailed     Status = "failed"
	StatusSuppressed Status = "suppressed" // every recipient is on the tenant's suppression list
	StatusCancelled  Status = "cancelled"
)

// Statuses lists every Status in the order of a message's life, as
// openapi.yaml's Status enum does.
func Statuses() []Status {
	return []Status{StatusScheduled, StatusQueued, StatusSending, StatusDeferred, StatusSent, StatusFailed,
		StatusSuppressed, StatusCancelled}
}

// Final reports whether a message in status s is done with: it is never
// tried again, its payload is dropped, and its record is kept for the
// retention from then.
func (s Status) Final() bool {
	switch s {
	case StatusSent, StatusFailed, StatusSuppressed, StatusCancelled:
		return true
	}
	return false
}

// eventPrefix starts every event type; the rest is the status reached.
const eventPrefix = "message."

// eventStatuses are the statuses whose reaching writes an event, in the
// order webhooks list the event types.
var eventStatuses = [...]Status{StatusSent, StatusDeferred, StatusFailed, StatusSuppressed}

// Event reports the type of the event written when a message reaches s
// ("message." and the status), and whether one is written at all: a
// message put back without an attempt (queued), cancelled or changing
// hands inside the queue tells no webhook.
func (s Status) Event() (string, bool) {
	if !slices.Contains(eventStatuses[:], s) {
		return "", false
	}
	return eventPrefix + string(s), true
}

// EventTypes lists every event type: the types a webhook can ask for.
func EventTypes() []string {
	out := make([]string, 0, len(eventStatuses))
	for _, s := range eventStatuses {
		e, _ := s.Event()
		out = append(out, e)
	}
	return out
}

// EventStatus is the status an event type is named after ("" when it is
// not one): what a webhook's event says in data.status. A type this
// version does not know (written by a newer replica) still names its status.
func EventStatus(eventType string) Status {
	s, ok := strings.CutPrefix(eventType, eventPrefix)
	if !ok {
		return ""
	}
	return Status(s)
}

// RecipientStatus is where one recipient of a message is.
type RecipientStatus string

const (
	RecipientSent       RecipientStatus = "sent"       // the server took the message for it
	RecipientDeferred   RecipientStatus = "deferred"   // refused for now, or not tried: tried again
	RecipientFailed     RecipientStatus = "failed"     // refused for good, or its retry window ran out
	RecipientSuppressed RecipientStatus = "suppressed" // on the tenant's suppression list: skipped
)

// RecipientStatuses lists every RecipientStatus, as openapi.yaml's
// Recipient enum does.
func RecipientStatuses() []RecipientStatus {
	return []RecipientStatus{RecipientSent, RecipientDeferred, RecipientFailed, RecipientSuppressed}
}

// group is the consumer group every worker joins.
const group = "outbound"

// eventGroup is the consumer group that turns message events into webhook
// deliveries.
const eventGroup = "webhooks"

// luaNames is Lua that the scripts needing these names start with:
//
//	GROUP   the workers' consumer group
//	STATUS  every status by name: STATUS.sent is 'sent'
//	FINAL   the final statuses: FINAL[st] is true for them, else nil
//	EVENT   the event type of each status that has one: EVENT.sent is
//	        'message.sent'; nil for a status without one
//
// It is rendered from the Go names above, so no script spells a status,
// an event type or the group itself.
var luaNames = renderLuaNames()

func renderLuaNames() string {
	var status, final, event []string
	for _, s := range Statuses() {
		status = append(status, luaKey(string(s))+" = "+luaString(string(s)))
		if s.Final() {
			final = append(final, luaKey(string(s))+" = true")
		}
		if e, ok := s.Event(); ok {
			event = append(event, luaKey(string(s))+" = "+luaString(e))
		}
	}
	return "\nlocal GROUP = " + luaString(group) + "\n" +
		"local STATUS = {" + strings.Join(status, ", ") + "}\n" +
		"local FINAL = {" + strings.Join(final, ", ") + "}\n" +
		"local EVENT = {" + strings.Join(event, ", ") + "}\n"
}

// luaSafe is what the names may hold: nothing a Lua string or key would
// need escaped.
var luaSafe = regexp.MustCompile(`^[a-z][a-z0-9_.]*$`)

func luaString(s string) string {
	if !luaSafe.MatchString(s) {
		panic("queue: name " + s + " needs escaping in Lua")
	}
	return "'" + s + "'"
}

func luaKey(s string) string { return "[" + luaString(s) + "]" }
