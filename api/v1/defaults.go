package v1

import (
	"slices"
	"strings"
)

// Defaults that the schema applies; Default applies the same ones in Go.
const (
	DefaultCookieName           = "authgate_session"
	DefaultCookiePath           = "/"
	DefaultSessionTTL           = Duration("168h")
	DefaultRefreshThreshold     = Duration("24h")
	DefaultMaxLifetime          = Duration("720h")
	DefaultAccessTokenTTL       = Duration("15m")
	DefaultRefreshTokenTTL      = Duration("168h")
	DefaultKeyRotationPeriod    = Duration("720h")
	DefaultClockSkew            = Duration("30s")
	DefaultAlgorithm            = AlgorithmES256
	DefaultSameSite             = SameSiteLax
	DefaultOnStoreUnavailable   = StoreUnavailableDeny
	defaultSecure               = true
	defaultRefreshTokenRotation = true
)

// Default fills in every field that the CRD schema defaults, the same way the API server does. The
// API server applies the schema's defaults itself; Default is for policies that never pass through
// one (the webhook's standalone mode reads YAML files). The tests check that both agree.
func (s *AuthPolicySpec) Default() {
	if s.OnStoreUnavailable == "" {
		s.OnStoreUnavailable = DefaultOnStoreUnavailable
	}
	if s.Session != nil {
		c := &s.Session.Cookie
		setIfEmpty(&c.Name, DefaultCookieName)
		setIfEmpty(&c.Path, DefaultCookiePath)
		setIfEmpty(&c.SameSite, DefaultSameSite)
		if c.Secure == nil {
			c.Secure = boolPtr(defaultSecure)
		}
		setIfEmpty(&s.Session.TTL, DefaultSessionTTL)
		setIfEmpty(&s.Session.RefreshThreshold, DefaultRefreshThreshold)
		setIfEmpty(&s.Session.MaxLifetime, DefaultMaxLifetime)
	}
	if j := s.JWT; j != nil {
		setIfEmpty(&j.Algorithm, DefaultAlgorithm)
		setIfEmpty(&j.AccessTokenTTL, DefaultAccessTokenTTL)
		setIfEmpty(&j.RefreshTokenTTL, DefaultRefreshTokenTTL)
		setIfEmpty(&j.KeyRotationPeriod, DefaultKeyRotationPeriod)
		setIfEmpty(&j.ClockSkew, DefaultClockSkew)
		if j.RefreshTokenRotation == nil {
			j.RefreshTokenRotation = boolPtr(defaultRefreshTokenRotation)
		}
	}
}

// SecretNames returns the names of the Secrets the policy references, in a stable order and
// without repeats.
func (s *AuthPolicySpec) SecretNames() []string {
	var names []string
	add := func(r *SecretReference) {
		if r == nil || r.Name == "" {
			return
		}
		for _, n := range names {
			if n == r.Name {
				return
			}
		}
		names = append(names, r.Name)
	}
	if s.JWT != nil {
		add(s.JWT.SigningKeySecretRef)
	}
	if s.Login != nil {
		add(s.Login.UsersSecretRef)
	}
	return names
}

// ModeSummary lists the modes the rules use, each once, in rule order, joined with ","
// ("Public,JWT,Session"): the value of status.modes.
func (s *AuthPolicySpec) ModeSummary() string {
	var modes []string
	for _, r := range s.Rules {
		if !slices.Contains(modes, string(r.Mode)) {
			modes = append(modes, string(r.Mode))
		}
	}
	return strings.Join(modes, ",")
}

func setIfEmpty[T ~string](p *T, v T) {
	if *p == "" {
		*p = v
	}
}

func boolPtr(b bool) *bool { return &b }
