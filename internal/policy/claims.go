package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// Claims are the routes a policy answers for when a proxy does not name it: each of its hosts with
// each of its rules' path and methods. They depend on the spec alone, never on Secrets, so a policy
// keeps its routes while a Secret it needs is missing or being fixed: another policy cannot take
// them over in the meantime, and nothing changes hands when the Secret comes back.
type Claims struct {
	ref     Ref
	created time.Time
	hosts   []HostPattern
	rules   []Rule
}

// ClaimsOf reads the claims of a policy. It fails, with the same *CompileError as Compile, when the
// spec itself is invalid: such a policy claims nothing.
func ClaimsOf(p *authgatev1.AuthPolicy) (*Claims, error) {
	c := newCompiler(p, nil)
	c.specOnly = true
	c.compile()
	if len(c.invalid) > 0 {
		return nil, &CompileError{Invalid: c.invalid}
	}
	return c.out.Claims(), nil
}

// Claims returns the routes the compiled policy claims.
func (p *Policy) Claims() *Claims {
	return &Claims{ref: p.ref, created: p.created, hosts: p.hosts, rules: p.rules}
}

// Ref returns the policy the claims belong to.
func (c *Claims) Ref() Ref { return c.ref }

// Hosts returns the claimed host patterns, as written in the policy after normalization.
func (c *Claims) Hosts() []string {
	out := make([]string, len(c.hosts))
	for i, h := range c.hosts {
		out[i] = h.String()
	}
	return out
}

// older reports whether c takes precedence over o: the order of Older.
func (c *Claims) older(o *Claims) bool {
	if d := c.created.Compare(o.created); d != 0 {
		return d < 0
	}
	if d := strings.Compare(c.ref.Namespace, o.ref.Namespace); d != 0 {
		return d < 0
	}
	return c.ref.Name < o.ref.Name
}

// Conflict says which older policy already claims a route that a newer one claims too.
type Conflict struct {
	// With is the older policy, which keeps the route.
	With Ref
	// Host is the host pattern both claim.
	Host string
	// Rule is the newer policy's rule and WithRule the older policy's.
	Rule, WithRule string
	// Match describes the route: "path prefix /api/", "path /login" or "every path", with methods.
	Match string
}

// String describes the conflict for a condition message.
func (c Conflict) String() string {
	return fmt.Sprintf("AuthPolicy %s, which is older, already claims host %s %s (its rule %s; this policy's rule %s)",
		c.With, c.Host, c.Match, c.WithRule, c.Rule)
}

// FindConflict returns the first route of c that a policy among others claims too and is older
// than c (Older order). Others that are not older, and c itself, are ignored, so the result
// depends only on policies that came first: the older of two policies always keeps the route,
// whatever order they are looked at in. Two rules claim the same route when they name the same
// host pattern, the same path match (the same exact path, the same prefix, or both every path)
// and methods that overlap.
func FindConflict(c *Claims, others []*Claims) (Conflict, bool) {
	older := make([]*Claims, 0, len(others))
	for _, o := range others {
		if o != nil && o.ref != c.ref && o.older(c) {
			older = append(older, o)
		}
	}
	slices.SortFunc(older, func(a, b *Claims) int {
		if a.older(b) {
			return -1
		}
		return 1
	})
	for _, h := range c.hosts {
		for i := range c.rules {
			r := &c.rules[i]
			for _, o := range older {
				if !slices.Contains(o.hosts, h) {
					continue
				}
				for j := range o.rules {
					if sameRoute(r, &o.rules[j]) {
						return Conflict{With: o.ref, Host: h.String(), Rule: r.name, WithRule: o.rules[j].name, Match: describeRoute(r)}, true
					}
				}
			}
		}
	}
	return Conflict{}, false
}

// Conflicts returns, for every policy in all that conflicts with an older one, the conflict
// FindConflict reports.
func Conflicts(all []*Claims) map[Ref]Conflict {
	byHost := map[HostPattern][]*Claims{}
	for _, c := range all {
		for _, h := range c.hosts {
			byHost[h] = append(byHost[h], c)
		}
	}
	out := map[Ref]Conflict{}
	for _, c := range all {
		var sharing []*Claims
		for _, h := range c.hosts {
			sharing = append(sharing, byHost[h]...)
		}
		if conflict, ok := FindConflict(c, sharing); ok {
			out[c.ref] = conflict
		}
	}
	return out
}

func sameRoute(a, b *Rule) bool {
	if a.anyPath != b.anyPath || (!a.anyPath && (a.path.kind != b.path.kind || a.path.canon != b.path.canon)) {
		return false
	}
	return a.methods.Overlaps(b.methods)
}

func describeRoute(r *Rule) string {
	var s string
	switch {
	case r.anyPath:
		s = "every path"
	case r.path.IsExact():
		s = "path " + r.path.String()
	default:
		s = "path prefix " + r.path.String()
	}
	if m := r.methods.String(); m != "*" {
		s += " for " + m
	}
	return s
}

// Overlaps reports whether some request method matches both sets.
func (s MethodSet) Overlaps(o MethodSet) bool {
	if len(s.names) == 0 || len(o.names) == 0 {
		return true
	}
	for _, n := range s.names {
		if o.Matches(n) {
			return true
		}
	}
	for _, n := range o.names {
		if s.Matches(n) {
			return true
		}
	}
	return false
}
