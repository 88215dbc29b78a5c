package login

// Result is how a login or a refresh ended, as Metrics counts it.
type Result string

const (
	// ResultSuccess: signed in, or given new tokens.
	ResultSuccess Result = "success"
	// ResultFailure: for a login, wrong credentials or an unknown or disabled account; for a
	// refresh, a refresh token that is unknown, expired, revoked, reused, of another policy, or
	// of a user who can no longer sign in.
	ResultFailure Result = "failure"
	// ResultRateLimited: a login refused by the rate limits before the password was checked.
	ResultRateLimited Result = "rate_limited"
	// ResultInvalidRequest: a body that does not parse, an expired or forged CSRF token, a
	// refused return address, no refresh token at all.
	ResultInvalidRequest Result = "invalid_request"
	// ResultError: the store could not be reached (or a token could not be signed).
	ResultError Result = "error"
)

// Metrics counts what the endpoints do. policy is the "<namespace>/<name>" of a policy that is
// loaded or that issued the refresh token presented, or "" when the request names none: never a
// value a client chooses freely. Implementations must be safe for concurrent use.
type Metrics interface {
	Login(policy string, result Result)
	// Logout counts a completed logout; everywhere when it ended every session and token of the
	// user.
	Logout(policy string, everywhere bool)
	Refresh(policy string, result Result)
	// RefreshReuse counts a used refresh token presented again outside the grace window, which
	// revoked its whole login. The refresh is also counted as a failure.
	RefreshReuse(policy string)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) Login(string, Result)   {}
func (noMetrics) Logout(string, bool)    {}
func (noMetrics) Refresh(string, Result) {}
func (noMetrics) RefreshReuse(string)    {}
