package login

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/internal/audit"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/policy"
	"github.com/authgate/authgate/internal/session"
	"github.com/authgate/authgate/internal/store"
	"github.com/authgate/authgate/internal/token"
)

// RefreshCookieName is the cookie that carries a browser's refresh token, sent only to /auth/.
const RefreshCookieName = "authgate_refresh"

// maxBody bounds login, logout and refresh request bodies.
const maxBody = 16 << 10

// Config wires a Service.
type Config struct {
	Snapshots authz.Snapshots
	Sessions  *session.Manager
	Store     store.Store
	Tokens    *token.Verifier
	// Key is at least 32 secret bytes shared by every replica; CSRF tokens and refresh-token
	// rotation are keyed by values derived from it.
	Key []byte
	// TrustForwarded takes the client address for rate limiting from X-Real-IP or X-Forwarded-For
	// instead of the connection: set it only when the login endpoints are reachable through the
	// ingress alone, or clients choose their own address.
	TrustForwarded bool
	// RefreshGrace is how long a rotated refresh token may be presented again, by a concurrent
	// request of the same client, and get the same successor instead of revoking the login.
	RefreshGrace time.Duration
	// Limiter limits login attempts; nil uses DefaultLimiterConfig.
	Limiter *Limiter
	Clock   func() time.Time
	// Log is for what operators must fix (a store that fails, a page that does not render).
	Log logr.Logger
	// Audit records logins, logouts, refresh-token reuse and the revocations they cause; its
	// zero value records nothing.
	Audit audit.Logger
	// Metrics counts logins, logouts and refreshes; nil counts nothing.
	Metrics Metrics
}

// Service serves /auth/login, /auth/logout, /auth/refresh, /auth/userinfo and the
// /.well-known/ documents that let services verify authgate's tokens themselves.
type Service struct {
	cfg        Config
	csrf       *CSRF
	refreshKey []byte
	limiter    *Limiter
	dummyMu    sync.Mutex
	dummies    map[int][]byte
	clock      func() time.Time
	log        logr.Logger
	audit      audit.Logger
	metrics    Metrics
}

// NewService checks cfg and returns a Service.
func NewService(cfg Config) (*Service, error) {
	if len(cfg.Key) < 32 {
		return nil, fmt.Errorf("the login key must be at least 32 bytes, got %d", len(cfg.Key))
	}
	csrf, err := NewCSRF(derive(cfg.Key, "authgate csrf"))
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, csrf: csrf, refreshKey: derive(cfg.Key, "authgate refresh rotation"),
		limiter: cfg.Limiter, dummies: map[int][]byte{}, clock: cfg.Clock, log: cfg.Log,
		audit: cfg.Audit, metrics: cfg.Metrics,
	}
	if _, err := s.dummyHash(bcrypt.DefaultCost); err != nil {
		return nil, err
	}
	if s.limiter == nil {
		s.limiter = NewLimiter(DefaultLimiterConfig())
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	return s, nil
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Register adds the service's routes to mux.
func (s *Service) Register(mux *http.ServeMux) {
	posts := CrossOrigin()
	mux.HandleFunc("GET /auth/login", s.loginPage)
	mux.Handle("POST /auth/login", posts.Handler(http.HandlerFunc(s.login)))
	mux.HandleFunc("GET /auth/logout", s.logoutPage)
	mux.Handle("POST /auth/logout", posts.Handler(http.HandlerFunc(s.logout)))
	mux.Handle("POST /auth/refresh", posts.Handler(http.HandlerFunc(s.refresh)))
	mux.HandleFunc("GET /auth/userinfo", s.userinfo)
	mux.HandleFunc("GET /.well-known/jwks.json", s.jwks)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.discovery)
}

// policyFor finds the policy a login request is for: ?policy=<ns>/<name>, else the policy that
// claims the request's host.
func (s *Service) policyFor(r *http.Request) (*policy.Policy, error) {
	snap := s.cfg.Snapshots.Load()
	if snap == nil {
		return nil, errors.New("no policies are loaded yet")
	}
	if name := r.URL.Query().Get("policy"); name != "" {
		ref, err := policy.ParseRef(name)
		if err != nil {
			return nil, err
		}
		p, ok := snap.Get(ref)
		if !ok {
			return nil, fmt.Errorf("policy %s is not loaded", ref)
		}
		return p, nil
	}
	host, err := policy.NormalizeHost(r.Host)
	if err != nil {
		return nil, err
	}
	p, _, ok := snap.Route(host, http.MethodGet, "/")
	if !ok {
		return nil, fmt.Errorf("no policy claims host %s: name one with ?policy=<namespace>/<name>", host)
	}
	return p, nil
}

// clientIP is the address login attempts are limited by.
func (s *Service) clientIP(r *http.Request) string {
	if s.cfg.TrustForwarded {
		if ip := strings.TrimSpace(r.Header.Get("X-Real-IP")); ip != "" {
			return ip
		}
		if first, _, _ := strings.Cut(r.Header.Get("X-Forwarded-For"), ","); strings.TrimSpace(first) != "" {
			return strings.TrimSpace(first)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// requestURL is the absolute URL of the request, the base that relative redirects resolve against.
func requestURL(r *http.Request) *url.URL {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path}
}

// secureCookies says whether authgate's own cookies for p must be Secure: as the policy's session
// cookie is, and always when the policy has no session settings.
func secureCookies(p *policy.Policy) bool {
	if s, ok := p.Session(); ok {
		return s.Secure
	}
	return true
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// pageHeaders are sent with every HTML page: no framing, no scripts, no caching, and no referrer to
// other origins. The referrer policy is same-origin, not no-referrer: with no-referrer browsers send
// "Origin: null" on the form post, which cross-origin protection must refuse.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	noStore(w)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", LoginPageCSP())
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
}

func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	p, err := s.policyFor(r)
	if err != nil || p.Login() == nil {
		if err == nil {
			err = fmt.Errorf("policy %s has no login section", p.Ref())
		}
		pageHeaders(w)
		w.WriteHeader(http.StatusNotFound)
		_ = RenderLoginPage(w, PageData{Error: "There is no sign-in here: " + err.Error()})
		return
	}
	s.renderForm(w, r, p, http.StatusOK, "", "", r.URL.Query().Get("rd"))
}

func (s *Service) renderForm(w http.ResponseWriter, r *http.Request, p *policy.Policy, status int, msg, email, rd string) {
	field, ok := s.csrfField(w, r, p, "login")
	if !ok {
		return
	}
	pageHeaders(w)
	w.WriteHeader(status)
	action := "/auth/login?" + url.Values{"policy": {p.Name()}}.Encode()
	if err := RenderLoginPage(w, PageData{
		PolicyName: p.Ref().Name, PolicyRef: p.Name(), Redirect: rd, CSRFField: field,
		Error: msg, Email: email, Action: action,
	}); err != nil {
		s.log.Error(err, "Rendering the login page")
	}
}

// csrfField returns the CSRF field for a form of this purpose. A browser that already holds a CSRF
// cookie keeps it, so that a second tab's form does not invalidate the first one's; otherwise a new
// cookie is set.
func (s *Service) csrfField(w http.ResponseWriter, r *http.Request, p *policy.Policy, purpose string) (string, bool) {
	if c, err := r.Cookie(CSRFCookieName); err == nil {
		if field, err := s.csrf.Field(purpose, c.Value); err == nil {
			return field, true
		}
	}
	field, cookie, err := s.csrf.Issue(purpose)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return "", false
	}
	c := CSRFCookie(cookie)
	c.Secure = secureCookies(p)
	http.SetCookie(w, c)
	return field, true
}

// logoutPage serves the sign-out form: logging out is a POST with a CSRF token, so that no other
// site can log a user out with a link or an image.
func (s *Service) logoutPage(w http.ResponseWriter, r *http.Request) {
	p, err := s.policyFor(r)
	if err != nil {
		pageHeaders(w)
		w.WriteHeader(http.StatusNotFound)
		_ = RenderLoginPage(w, PageData{SignOut: true, Error: "There is no sign-out here: " + err.Error()})
		return
	}
	field, ok := s.csrfField(w, r, p, "logout")
	if !ok {
		return
	}
	pageHeaders(w)
	action := "/auth/logout?" + url.Values{"policy": {p.Name()}}.Encode()
	if err := RenderLoginPage(w, PageData{
		SignOut: true, PolicyName: p.Ref().Name, PolicyRef: p.Name(),
		Redirect: r.URL.Query().Get("rd"), CSRFField: field, Action: action,
	}); err != nil {
		s.log.Error(err, "Rendering the sign-out page")
	}
}

// credentials is a login request, from a form or JSON.
type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Redirect string `json:"rd,omitempty"`
}

func isJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type apiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

const wrongCredentials = "Wrong email or password."

func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	api := isJSON(r)
	p, err := s.policyFor(r)
	if err != nil || p.Login() == nil {
		if err == nil {
			err = fmt.Errorf("policy %s has no login section", p.Ref())
		}
		if api {
			writeJSON(w, http.StatusNotFound, apiError{"unknown_policy", err.Error()})
		} else {
			http.Error(w, "no sign-in here: "+err.Error(), http.StatusNotFound)
		}
		return
	}
	var c credentials
	if api {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			s.metrics.Login(p.Name(), ResultInvalidRequest)
			writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "the body must be JSON {\"email\", \"password\"}"})
			return
		}
	} else {
		if err := r.ParseForm(); err != nil {
			s.metrics.Login(p.Name(), ResultInvalidRequest)
			http.Error(w, "the form does not parse", http.StatusBadRequest)
			return
		}
		c = credentials{Email: r.PostForm.Get("email"), Password: r.PostForm.Get("password"), Redirect: r.PostForm.Get("rd")}
		csrfCookie, _ := r.Cookie(CSRFCookieName)
		cookieValue := ""
		if csrfCookie != nil {
			cookieValue = csrfCookie.Value
		}
		if err := s.csrf.Check("login", r.PostForm.Get("csrf"), cookieValue); err != nil {
			s.log.Info("Login form refused", "reason", "csrf", "detail", err.Error(), "policy", p.Name())
			s.metrics.Login(p.Name(), ResultInvalidRequest)
			s.renderForm(w, r, p, http.StatusForbidden, "Your sign-in form expired. Please try again.", c.Email, c.Redirect)
			return
		}
	}
	// The return address is checked before the credentials, so that a refused address never
	// leaves a logged-in user stranded on an error.
	// Without an rd the browser goes to the root of the host it is on: a relative "/" cannot leave
	// that host, so it needs no check against the policy's domains.
	target := "/"
	if c.Redirect != "" {
		if target, err = ValidateRedirect(p, c.Redirect, requestURL(r)); err != nil {
			s.log.Info("Login refused a return address", "policy", p.Name(), "reason", redirectRefusal(err))
			s.metrics.Login(p.Name(), ResultInvalidRequest)
			if api {
				writeJSON(w, http.StatusBadRequest, apiError{"invalid_redirect", err.Error()})
			} else {
				s.renderForm(w, r, p, http.StatusBadRequest, "The page to return to is not allowed.", c.Email, "")
			}
			return
		}
	}

	email := strings.ToLower(strings.TrimSpace(c.Email))
	client := s.clientIP(r)
	// Audit events name the account only when it exists: an unknown "email" may be a password
	// typed into the wrong field.
	event := audit.Event{Event: audit.EventLogin, Policy: p.Name(), Client: client}
	if u, found := p.Login().User(email); found {
		event.Subject, event.Email = u.ID, u.Email
	}
	if ok, retry := s.limiter.Allow(client, AccountKey(p.Ref(), email)); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int((retry+time.Second-1)/time.Second)))
		event.Result, event.Reason = string(ResultRateLimited), "too_many_attempts"
		s.audit.Record("Login rate-limited", event)
		s.metrics.Login(p.Name(), ResultRateLimited)
		if api {
			writeJSON(w, http.StatusTooManyRequests, apiError{"rate_limited", "too many attempts; try again later"})
		} else {
			s.renderForm(w, r, p, http.StatusTooManyRequests, "Too many attempts. Please wait a moment and try again.", c.Email, c.Redirect)
		}
		return
	}
	user, refused := s.authenticate(p, email, c.Password)
	if refused != "" {
		result := ResultFailure
		if refused == refusedInternal {
			result = ResultError
		}
		event.Result, event.Reason = string(result), refused
		s.audit.Record("Login failed", event)
		s.metrics.Login(p.Name(), result)
		if api {
			writeJSON(w, http.StatusUnauthorized, apiError{"invalid_credentials", wrongCredentials})
		} else {
			s.renderForm(w, r, p, http.StatusUnauthorized, wrongCredentials, c.Email, c.Redirect)
		}
		return
	}

	ctx := r.Context()
	// A store that fails halfway leaves the browser with nothing: no half login.
	unavailable := func(err error) {
		w.Header().Del("Set-Cookie")
		event.Result, event.Reason = string(ResultError), "store_unavailable"
		s.audit.Record("Login failed: the session store is unavailable", event)
		s.metrics.Login(p.Name(), ResultError)
		if api {
			s.storeFailed(w, true, err)
			return
		}
		s.log.Error(err, "Session store failed during login")
		s.renderForm(w, r, p, http.StatusServiceUnavailable, "Sign-in is unavailable right now. Please try again in a moment.", c.Email, c.Redirect)
	}
	var answer *tokenAnswer
	if _, ok := p.Session(); ok {
		_, cookie, err := s.cfg.Sessions.Create(ctx, p, user)
		if err != nil {
			unavailable(err)
			return
		}
		w.Header().Add("Set-Cookie", cookie)
	}
	if j := p.JWT(); j != nil && j.Issues() {
		answer, err = s.startFamily(ctx, p, user)
		if err != nil {
			unavailable(err)
			return
		}
		if !api {
			s.setTokenCookies(w, p, answer)
		}
	}
	event.Result = string(ResultSuccess)
	s.audit.Record("Login succeeded", event)
	s.metrics.Login(p.Name(), ResultSuccess)
	if api {
		if answer == nil {
			writeJSON(w, http.StatusOK, map[string]string{"status": "signed_in"})
			return
		}
		writeJSON(w, http.StatusOK, answer)
		return
	}
	noStore(w)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// refusedInternal is authenticate's reason when the check itself failed.
const refusedInternal = "internal_error"

// authenticate checks a password in the same time whether or not the user exists: an unknown email
// is checked against a dummy hash as costly as the costliest of the policy's users, so response times
// do not reveal who has an account. It returns why the login is refused (for the audit log only:
// the client is told the same for every reason), or "" for the user to sign in.
func (s *Service) authenticate(p *policy.Policy, email, password string) (user policy.User, refused string) {
	user, found := p.Login().User(email)
	hash := user.PasswordHash()
	if !found {
		var err error
		if hash, err = s.dummyHash(p.Login().MaxHashCost()); err != nil {
			s.log.Error(err, "Making a dummy password hash")
			return policy.User{}, refusedInternal
		}
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	switch {
	case !found:
		return user, "unknown_user"
	case err != nil:
		return user, "wrong_password"
	case user.Disabled:
		return user, "user_disabled"
	}
	return user, ""
}

// dummyHash returns a bcrypt hash of the given cost that no password matches, made once per cost.
func (s *Service) dummyHash(cost int) ([]byte, error) {
	cost = max(cost, bcrypt.DefaultCost)
	s.dummyMu.Lock()
	defer s.dummyMu.Unlock()
	if h, ok := s.dummies[cost]; ok {
		return h, nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte("authgate-no-such-user"), cost)
	if err != nil {
		return nil, err
	}
	s.dummies[cost] = h
	return h, nil
}

func (s *Service) storeFailed(w http.ResponseWriter, api bool, err error) {
	s.log.Error(err, "Session store failed during login")
	if api {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"unavailable", "the session store is unavailable"})
		return
	}
	http.Error(w, "sign-in is unavailable right now", http.StatusServiceUnavailable)
}

// tokenAnswer is the OAuth 2.0-style token response.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// for cookies
	accessExpires  time.Time
	refreshExpires time.Time
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// startFamily issues the first refresh token and access token of a login.
func (s *Service) startFamily(ctx context.Context, p *policy.Policy, user policy.User) (*tokenAnswer, error) {
	family, err := randomToken()
	if err != nil {
		return nil, err
	}
	refresh, err := randomToken()
	if err != nil {
		return nil, err
	}
	now := s.clock()
	rec := store.RefreshToken{
		Policy: p.Name(), UserID: user.ID, Email: user.Email, Family: family,
		IssuedAt: now, ExpiresAt: now.Add(p.JWT().RefreshTokenTTL),
	}
	if err := s.cfg.Store.CreateRefreshToken(ctx, store.KeyOf(refresh), rec); err != nil {
		return nil, err
	}
	return s.accessAnswer(p, user, family, refresh, rec.ExpiresAt, now)
}

func (s *Service) accessAnswer(p *policy.Policy, user policy.User, family, refresh string, refreshExpires, now time.Time) (*tokenAnswer, error) {
	raw, claims, err := token.Issue(p, user, family, now)
	if err != nil {
		return nil, err
	}
	return &tokenAnswer{
		AccessToken: raw, TokenType: "Bearer", ExpiresIn: int((claims.ExpiresAt.Sub(now) + time.Second/2) / time.Second),
		RefreshToken: refresh, accessExpires: claims.ExpiresAt, refreshExpires: refreshExpires,
	}, nil
}

// setTokenCookies gives a browser its refresh token (only ever sent to /auth/) and, when the policy
// names one, its access-token cookie.
func (s *Service) setTokenCookies(w http.ResponseWriter, p *policy.Policy, a *tokenAnswer) {
	secure := secureCookies(p)
	if a.RefreshToken != "" {
		http.SetCookie(w, &http.Cookie{
			Name: RefreshCookieName, Value: a.RefreshToken, Path: "/auth/", Expires: a.refreshExpires,
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode,
		})
	}
	if name := p.JWT().AccessTokenCookie; name != "" {
		http.SetCookie(w, &http.Cookie{
			Name: name, Value: a.AccessToken, Path: "/", Expires: a.accessExpires,
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
		})
	}
}

// successor derives the token that replaces a refresh token. Deriving it (rather than drawing it)
// lets a concurrent duplicate refresh, within the grace window, be given the very same successor
// without the store ever holding a token in the clear.
func (s *Service) successor(refresh string) string {
	m := hmac.New(sha256.New, s.refreshKey)
	m.Write([]byte(refresh))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// refreshRequest is the JSON body of /auth/refresh.
type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Service) refresh(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	raw, fromCookie := "", false
	if isJSON(r) {
		var body refreshRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			s.metrics.Refresh("", ResultInvalidRequest)
			writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "the body must be JSON {\"refresh_token\"}"})
			return
		}
		raw = body.RefreshToken
	} else if err := r.ParseForm(); err == nil && r.PostForm.Get("refresh_token") != "" {
		raw = r.PostForm.Get("refresh_token")
	}
	if raw == "" {
		if c, err := r.Cookie(RefreshCookieName); err == nil {
			raw, fromCookie = c.Value, true
		}
	}
	if raw == "" || len(raw) > 256 {
		s.metrics.Refresh("", ResultInvalidRequest)
		writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "no refresh token: send {\"refresh_token\"} or the " + RefreshCookieName + " cookie"})
		return
	}
	ctx := r.Context()
	// policyName is what the refresh is counted under: the policy that issued the token, once it
	// is known.
	policyName := ""
	invalid := func(desc string) {
		s.metrics.Refresh(policyName, ResultFailure)
		writeJSON(w, http.StatusUnauthorized, apiError{"invalid_grant", desc})
	}
	failed := func(err error) {
		s.metrics.Refresh(policyName, ResultError)
		s.storeFailed(w, true, err)
	}
	key := store.KeyOf(raw)
	rec, err := s.cfg.Store.GetRefreshToken(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		invalid("the refresh token is unknown, expired or revoked")
		return
	}
	if err != nil {
		failed(err)
		return
	}
	policyName = rec.Policy
	snap := s.cfg.Snapshots.Load()
	ref, err := policy.ParseRef(rec.Policy)
	var p *policy.Policy
	if err == nil && snap != nil {
		p, _ = snap.Get(ref)
	}
	if p == nil || p.JWT() == nil || !p.JWT().Issues() {
		invalid("the policy that issued the refresh token no longer issues tokens")
		return
	}
	if name := r.URL.Query().Get("policy"); name != "" && name != rec.Policy {
		invalid("the refresh token belongs to another policy")
		return
	}
	now := s.clock()
	user, ok := p.Login().UserByID(rec.UserID)
	if !ok || user.Disabled {
		if err := s.cfg.Store.RevokeFamily(ctx, rec.Policy, rec.Family, s.familyUntil(p, rec, now)); err == nil {
			s.audit.Record("Refresh by a removed or disabled user: login revoked", audit.Event{
				Event: audit.EventRevocation, Policy: rec.Policy, Subject: rec.UserID, Client: s.clientIP(r),
				Result: "revoked", Reason: "user_removed_or_disabled", Kind: string(store.RevokeFamily),
			})
		}
		invalid("the user can no longer sign in")
		return
	}
	next := raw
	nextExpires := rec.ExpiresAt
	if p.JWT().RefreshTokenRotation {
		next = s.successor(raw)
		nextRec := rec
		nextRec.IssuedAt, nextRec.ExpiresAt = now, now.Add(p.JWT().RefreshTokenTTL)
		nextRec.UsedAt, nextRec.Successor = time.Time{}, store.Key{}
		outcome, _, err := s.cfg.Store.RotateRefreshToken(ctx, key, store.KeyOf(next), nextRec, now, s.cfg.RefreshGrace)
		if errors.Is(err, store.ErrNotFound) {
			invalid("the refresh token is unknown, expired or revoked")
			return
		}
		if err != nil {
			failed(err)
			return
		}
		if outcome == store.Reused {
			s.audit.Record("Refresh token reused: login revoked", audit.Event{
				Event: audit.EventRefreshReuse, Policy: rec.Policy, Subject: rec.UserID, Email: rec.Email,
				Client: s.clientIP(r), Result: "family_revoked", Reason: "refresh_token_reused", Kind: string(store.RevokeFamily),
			})
			s.metrics.RefreshReuse(rec.Policy)
			invalid("the refresh token was already used: every token of this login has been revoked")
			return
		}
		nextExpires = nextRec.ExpiresAt
	}
	answer, err := s.accessAnswer(p, user, rec.Family, next, nextExpires, now)
	if err != nil {
		failed(err)
		return
	}
	s.metrics.Refresh(policyName, ResultSuccess)
	if fromCookie {
		// The refresh token stays in its HttpOnly cookie: a script of the page must not read it.
		s.setTokenCookies(w, p, answer)
		answer.RefreshToken = ""
	}
	writeJSON(w, http.StatusOK, answer)
}

// familyUntil is how long a family's revocation must be remembered: until its refresh token and
// any access token issued from it have expired.
func (s *Service) familyUntil(p *policy.Policy, rec store.RefreshToken, now time.Time) time.Time {
	until := rec.ExpiresAt
	if j := p.JWT(); j != nil {
		if t := now.Add(j.AccessTokenTTL + j.ClockSkew); t.After(until) {
			until = t
		}
	}
	return until
}

func (s *Service) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	api := isJSON(r) || r.Header.Get("Authorization") != ""
	p, err := s.policyFor(r)
	if err != nil {
		if api {
			writeJSON(w, http.StatusNotFound, apiError{"unknown_policy", err.Error()})
		} else {
			http.Error(w, err.Error(), http.StatusNotFound)
		}
		return
	}
	var body struct {
		RefreshToken string `json:"refresh_token"`
		Everywhere   bool   `json:"everywhere"`
		Redirect     string `json:"rd"`
	}
	if isJSON(r) {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, apiError{"invalid_request", "the body must be JSON {\"refresh_token\", \"everywhere\"}"})
			return
		}
	} else if !api {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "the form does not parse", http.StatusBadRequest)
			return
		}
		csrfCookie, _ := r.Cookie(CSRFCookieName)
		value := ""
		if csrfCookie != nil {
			value = csrfCookie.Value
		}
		if err := s.csrf.Check("logout", r.PostForm.Get("csrf"), value); err != nil {
			http.Error(w, "the sign-out form expired; reload the page and try again", http.StatusForbidden)
			return
		}
		body.Everywhere = r.PostForm.Get("everywhere") == "true"
		body.Redirect = r.PostForm.Get("rd")
	}

	ctx := r.Context()
	now := s.clock()
	var userID, email string
	failed := func(err error) {
		s.audit.Record("Logout failed: the session store is unavailable", audit.Event{
			Event: audit.EventLogout, Policy: p.Name(), Subject: userID, Email: email, Client: s.clientIP(r),
			Result: string(ResultError), Reason: "store_unavailable", Everywhere: body.Everywhere && userID != "",
		})
		s.storeFailed(w, api, err)
	}
	if settings, ok := p.Session(); ok {
		if c, err := r.Cookie(settings.CookieName); err == nil {
			if res, err := s.cfg.Sessions.Check(ctx, p, c.Value); err == nil {
				userID, email = res.User.ID, res.User.Email
			}
			clear, err := s.cfg.Sessions.Delete(ctx, p, c.Value)
			if err != nil {
				failed(err)
				return
			}
			w.Header().Add("Set-Cookie", clear)
		}
	}
	if j := p.JWT(); j != nil {
		refresh := body.RefreshToken
		if refresh == "" {
			if c, err := r.Cookie(RefreshCookieName); err == nil {
				refresh = c.Value
			}
		}
		if refresh != "" {
			if rec, err := s.cfg.Store.GetRefreshToken(ctx, store.KeyOf(refresh)); err == nil && rec.Policy == p.Name() {
				userID, email = rec.UserID, rec.Email
				if err := s.cfg.Store.RevokeFamily(ctx, rec.Policy, rec.Family, s.familyUntil(p, rec, now)); err != nil {
					failed(err)
					return
				}
			}
		}
		if bearer, ok := authz.BearerToken(r.Header.Get("Authorization")); ok {
			if claims, err := s.cfg.Tokens.Verify(ctx, p, bearer); err == nil {
				userID, email = claims.Subject, claims.Email
				if claims.SessionID != "" {
					until := claims.ExpiresAt.Add(j.ClockSkew).Add(j.RefreshTokenTTL)
					if err := s.cfg.Store.RevokeFamily(ctx, p.Name(), claims.SessionID, until); err != nil {
						failed(err)
						return
					}
				}
			}
		}
		http.SetCookie(w, &http.Cookie{Name: RefreshCookieName, Path: "/auth/", MaxAge: -1, HttpOnly: true, Secure: secureCookies(p), SameSite: http.SameSiteStrictMode})
		if name := j.AccessTokenCookie; name != "" {
			http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, HttpOnly: true, Secure: secureCookies(p), SameSite: http.SameSiteLaxMode})
		}
	}
	everywhere := body.Everywhere && userID != ""
	event := audit.Event{Event: audit.EventLogout, Policy: p.Name(), Subject: userID, Email: email, Client: s.clientIP(r),
		Result: string(ResultSuccess), Everywhere: everywhere}
	if everywhere {
		n, err := s.cfg.Store.RevokeUser(ctx, p.Name(), userID, now, now.Add(p.LongestLife()))
		if err != nil {
			failed(err)
			return
		}
		event.Sessions = n
		s.audit.Record("Logged out everywhere", event)
	} else {
		if userID == "" {
			// Cookies are cleared all the same, but no session or token of the policy was presented.
			event.Reason = "no_identity"
		}
		s.audit.Record("Logged out", event)
	}
	s.metrics.Logout(p.Name(), everywhere)
	if api {
		writeJSON(w, http.StatusOK, map[string]any{"status": "signed_out", "everywhere": everywhere})
		return
	}
	target := "/auth/login?" + url.Values{"policy": {p.Name()}}.Encode()
	if body.Redirect != "" {
		if t, err := ValidateRedirect(p, body.Redirect, requestURL(r)); err == nil {
			target = t
		}
	}
	noStore(w)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// userInfo is the identity /auth/userinfo reports.
type userInfo struct {
	Subject   string    `json:"sub"`
	Email     string    `json:"email,omitempty"`
	Name      string    `json:"name,omitempty"`
	Roles     []string  `json:"roles"`
	Policy    string    `json:"policy"`
	Source    string    `json:"source"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Service) userinfo(w http.ResponseWriter, r *http.Request) {
	p, err := s.policyFor(r)
	if err != nil {
		writeJSON(w, http.StatusNotFound, apiError{"unknown_policy", err.Error()})
		return
	}
	ctx := r.Context()
	if j := p.JWT(); j != nil {
		if bearer, ok := authz.BearerToken(r.Header.Get("Authorization")); ok {
			claims, err := s.cfg.Tokens.Verify(ctx, p, bearer)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="authgate", error="invalid_token"`)
				writeJSON(w, http.StatusUnauthorized, apiError{"invalid_token", err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, userInfo{claims.Subject, claims.Email, claims.Name, nonNil(claims.Roles), p.Name(), "jwt", claims.ExpiresAt})
			return
		}
	}
	if settings, ok := p.Session(); ok {
		if c, err := r.Cookie(settings.CookieName); err == nil {
			res, err := s.cfg.Sessions.Check(ctx, p, c.Value)
			if err == nil {
				if res.SetCookie != "" {
					w.Header().Add("Set-Cookie", res.SetCookie)
				}
				u := res.User
				writeJSON(w, http.StatusOK, userInfo{u.ID, u.Email, u.Name, nonNil(u.Roles()), p.Name(), "session", res.Session.ExpiresAt})
				return
			}
			if !errors.Is(err, session.ErrNoSession) {
				s.storeFailed(w, true, err)
				return
			}
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="authgate"`)
	writeJSON(w, http.StatusUnauthorized, apiError{"unauthenticated", "no valid session or token"})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Service) jwks(w http.ResponseWriter, _ *http.Request) {
	snap := s.cfg.Snapshots.Load()
	if snap == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	var policies []*policy.Policy
	for p := range snap.Policies() {
		policies = append(policies, p)
	}
	body, err := token.PublicJWKS(policies)
	if err != nil {
		s.log.Error(err, "Building the JWKS")
	}
	if body == nil {
		http.Error(w, "no key set", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(body)
}

// discovery serves the OpenID Provider metadata of the issuer on the request's host: enough for
// verifiers (Istio RequestAuthentication, libraries) to find the keys.
func (s *Service) discovery(w http.ResponseWriter, r *http.Request) {
	snap := s.cfg.Snapshots.Load()
	if snap == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	host, err := policy.NormalizeHost(r.Host)
	if err != nil {
		http.Error(w, "bad host", http.StatusBadRequest)
		return
	}
	// Several policies may share an issuer (each with its own audience); the document lists the
	// algorithms of all of them.
	issuer := ""
	var algs []string
	for p := range snap.Policies() {
		j := p.JWT()
		if j == nil || !j.Issues() {
			continue
		}
		iss, err := url.Parse(j.Issuer)
		if err != nil {
			continue
		}
		if h, err := policy.NormalizeHost(iss.Host); err != nil || h != host || (issuer != "" && j.Issuer != issuer) {
			continue
		}
		issuer = j.Issuer
		if !slices.Contains(algs, string(j.Algorithm)) {
			algs = append(algs, string(j.Algorithm))
		}
	}
	if issuer == "" {
		writeJSON(w, http.StatusNotFound, apiError{"unknown_issuer", "no policy issues tokens as " + host})
		return
	}
	base := strings.TrimSuffix(issuer, "/")
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"token_endpoint":                        base + "/auth/refresh",
		"userinfo_endpoint":                     base + "/auth/userinfo",
		"id_token_signing_alg_values_supported": algs,
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
}
