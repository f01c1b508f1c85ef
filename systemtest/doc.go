// Package systemtest tests the whole service from outside: each test runs
// Outbound in-process, wired by app.New exactly as `outbound serve` wires
// it, on a real redis-server (or Redis Cluster) started by
// internal/redistest, with in-process go-smtp servers from
// internal/smtptest as tenants' accounts and the default relay, and talks
// to it over HTTP only. Every response is checked against openapi.yaml, and
// a full run fails when an operation it documents was never called.
//
// The harness (harness_test.go) differs from production only in its
// configuration values (small limits, short timeouts, quick retries) and
// in the seams app.Option offers: its own Redis client, a DNS resolver,
// the consumer name, webhook retry timing and SMTP pipelining off.
// Tests that need the built binary and real processes are in cmd/outbound.
package systemtest
