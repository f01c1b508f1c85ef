package api

import "net/http"

// This file is the catalogue of every code the API answers: the problem
// codes with their HTTP statuses, and the field codes of a
// validation_failed problem's errors. openapi.yaml (the Problem and
// FieldError code enums and descriptions) and the README's "Error codes"
// tables copy it; TestCatalogueAgrees holds them to it.

// problemCode is the stable machine code of a problem. problem takes
// nothing else, and each has its entry in problemCodes, so no code is
// answered without its status and its meaning.
type problemCode int

const (
	codeInvalidJSON problemCode = iota
	codeInvalidTenantID
	codeInvalidHeader
	codeInvalidQuery
	codeUnauthorized
	codeForbidden
	codeOperatorOnly
	codeNotFound
	codeMethodNotAllowed
	codeIdempotencyKeyReused
	codeNotCancellable
	codeTenantPaused
	codePreconditionFailed
	codePayloadTooLarge
	codeUnsupportedMediaType
	codeValidationFailed
	codeFromMismatch
	codeNoRoute
	codeRateLimited
	codeUnavailable
	codeInternalError
	numProblemCodes
)

// problemInfo is one problem code's entry.
type problemInfo struct {
	name    string // as answered in code, and in type after urn:outbound:problem:
	status  int
	title   string // the problem's title
	meaning string // when it is answered, for the docs
}

// problemCodes is the one table from problem codes to HTTP statuses, in
// the order the docs list them.
var problemCodes = [numProblemCodes]problemInfo{
	codeInvalidJSON: {"invalid_json", http.StatusBadRequest, "Request body is not valid JSON",
		"The body is empty, is not one JSON object in UTF-8, ends early or names a field twice."},
	codeInvalidTenantID: {"invalid_tenant_id", http.StatusBadRequest, "Invalid tenant id",
		"The tenant in the path is not 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit."},
	codeInvalidHeader: {"invalid_header", http.StatusBadRequest, "Invalid request header",
		"A request header is malformed: Idempotency-Key is 1-255 printable ASCII characters without spaces."},
	codeInvalidQuery: {"invalid_query", http.StatusBadRequest, "Invalid query parameter",
		"A query parameter is out of range (limit is 1 to 1000) or malformed (a time, a status, a tenant id; to or tag without a tenant), or after is not the next of an earlier page."},
	codeUnauthorized: {"unauthorized", http.StatusUnauthorized, "Missing or invalid API token",
		"No bearer token, or one that names no key."},
	codeForbidden: {"forbidden", http.StatusForbidden, "API token lacks the scope for this request",
		"The key lacks the endpoint's scope, or is bound to another tenant."},
	codeOperatorOnly: {"operator_only", http.StatusForbidden, "Only the operator may do this",
		"Only an operator key (admin, bound to no tenant) may do this; the detail names what was refused."},
	codeNotFound: {"not_found", http.StatusNotFound, "Not found",
		"No such endpoint, message (or its record expired), SMTP profile, suppression or webhook."},
	codeMethodNotAllowed: {"method_not_allowed", http.StatusMethodNotAllowed, "Method not allowed",
		"The endpoint does not take this method."},
	codeIdempotencyKeyReused: {"idempotency_key_reused", http.StatusConflict, "Idempotency key reused with a different request",
		"The Idempotency-Key was first used with a different request."},
	codeNotCancellable: {"not_cancellable", http.StatusConflict, "Message is being sent or is done",
		"Only a scheduled, queued or deferred message can be cancelled."},
	codeTenantPaused: {"tenant_paused", http.StatusLocked, "Tenant's sending is paused",
		"The tenant's sending is paused: new messages are refused until it is resumed."},
	codePreconditionFailed: {"precondition_failed", http.StatusPreconditionFailed, "Precondition failed",
		"If-Match does not name the current profile version, or no profile exists for it to match."},
	codePayloadTooLarge: {"payload_too_large", http.StatusRequestEntityTooLarge, "Request body too large",
		"The request body is over the endpoint's limit."},
	codeUnsupportedMediaType: {"unsupported_media_type", http.StatusUnsupportedMediaType, "Unsupported media type",
		"The body is not sent as application/json."},
	codeValidationFailed: {"validation_failed", http.StatusUnprocessableEntity, "Validation failed",
		"One or more fields are invalid; errors lists each with its field code."},
	codeFromMismatch: {"from_mismatch", http.StatusUnprocessableEntity, "From address does not match the tenant's account",
		"The message's from is not the tenant's account address, which its provider would rewrite or refuse."},
	codeNoRoute: {"no_route", http.StatusUnprocessableEntity, "No way to send for this tenant",
		"The tenant has no enabled SMTP profile and no default relay is configured."},
	codeRateLimited: {"rate_limited", http.StatusTooManyRequests, "Tenant is over its sending rate",
		"The tenant is over its recipient rate; Retry-After says when to try again."},
	codeUnavailable: {"unavailable", http.StatusServiceUnavailable, "Service temporarily unavailable",
		"Storage (Redis) is unreachable; Retry-After says when to try again."},
	codeInternalError: {"internal_error", http.StatusInternalServerError, "Internal error",
		"An unexpected failure; the operator's log has it under the request id."},
}

// info is c's entry; a code without one answers as internal_error.
func (c problemCode) info() problemInfo {
	if c < 0 || c >= numProblemCodes || problemCodes[c].name == "" {
		return problemCodes[codeInternalError]
	}
	return problemCodes[c]
}

// String is the code as answered.
func (c problemCode) String() string { return c.info().name }

// fieldCodes are the codes of the errors of a validation_failed problem,
// each with what it means. The domain packages set them
// (validation.Error.Add); TestCatalogueAgrees finds every one they can
// set and fails on one missing here.
var fieldCodes = []struct{ name, meaning string }{
	{"required", "The field is missing or empty."},
	{"unknown_field", "The body has a field the endpoint does not take."},
	{"invalid_type", "The value is of the wrong JSON type."},
	{"invalid_value", "The value is not one of those allowed."},
	{"out_of_range", "The number is outside its allowed range."},
	{"invalid_characters", "The value holds control characters such as CR, LF or NUL."},
	{"too_long", "The value is over its length limit in bytes."},
	{"too_many", "More tags or metadata keys than allowed."},
	{"invalid_email", "Not a bare email address (local@domain, no display name)."},
	{"address_literal", "The address's domain is an address literal (x@[127.0.0.1]), which the relay would connect to itself."},
	{"too_many_recipients", "More distinct recipients in to, cc and bcc than a message may have."},
	{"exceeds_rate_limit", "More recipients than the tenant may send at once: the message could never fit its rate."},
	{"exceeds_provider_limit", "More recipients than the tenant's provider takes in one message (the profile's effective_limits.max_recipients)."},
	{"too_far", "send_at is more than 30 days ahead."},
	{"too_large", "The message (composed, or as submitted over SMTP) would be over the size limit."},
	{"invalid_base64", "An attachment's content is not valid base64."},
	{"invalid_content_type", "An attachment's content type is not a MIME type."},
	{"invalid_header_name", "A custom header's name is empty, not printable ASCII, or holds a space or ':'."},
	{"reserved_header", "A custom header the service or the servers on the way write themselves."},
	{"invalid_message_id", `A Message-ID that is not "<id-left@id-right>" without spaces or controls.`},
	{"malformed_header", "A message submitted over SMTP has a header line that is neither a field nor its continuation, or does not end with CRLF."},
	{"invalid_address", "A message submitted over SMTP has a From or Reply-To that does not parse as addresses, or a From of more than one mailbox."},
	{"duplicate_header", "A message submitted over SMTP has a field twice that RFC 5322 allows once (From, To, Subject, Message-ID, ...)."},
	{"invalid_tenant_id", "Not a tenant id."},
	{"batch_size", "A batch holds 1 to 100 messages."},
	{"invalid_host", "Not a host name or IP address."},
	{"unknown_provider", "Not one of the provider presets."},
	{"unexpected", "A field the rest of the input does not allow (an oauth block without auth xoauth2)."},
	{"secret_required", "The profile names another destination than the stored secret was given for: send the secret again."},
	{"invalid_url", "Not a URL of the kind asked for (https://, without credentials)."},
	{"https_required", "A webhook URL must be https://."},
	{"invalid_name", "A webhook name is not 1-64 letters, digits, '.', '_' or '-'."},
	{"unknown_event", "Not one of the webhook event types."},
	{"return_url_not_allowed", "A connect link's return_url does not start with one of the operator's OUTBOUND_CONNECT_RETURN_URLS."},
}
