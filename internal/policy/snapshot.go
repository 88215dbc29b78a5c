package policy

import (
	"iter"
	"slices"
	"strings"
)

// Snapshot is an immutable set of compiled policies with the indexes that find the policy for a
// request. A new Snapshot is built whole and swapped in atomically; requests hold on to the one
// they started with.
type Snapshot struct {
	byRef map[Ref]*Policy
	// exact maps a host to the policies naming it exactly; wildcard maps the domain after "*." to
	// the policies with that wildcard. Each list is in precedence order.
	exact    map[string][]*Policy
	wildcard map[string][]*Policy
	ordered  []*Policy
}

// NewSnapshot indexes policies. Where several claim the same host, the oldest (by creation time,
// then namespace and name) comes first, so a newer policy can never take a route from an older one
// by being created; the operator reports such a newer policy as Conflicted.
func NewSnapshot(policies []*Policy) *Snapshot {
	s := &Snapshot{
		byRef:    make(map[Ref]*Policy, len(policies)),
		exact:    map[string][]*Policy{},
		wildcard: map[string][]*Policy{},
	}
	sorted := slices.Clone(policies)
	slices.SortFunc(sorted, Older)
	s.ordered = sorted
	for _, p := range sorted {
		s.byRef[p.ref] = p
		for _, h := range p.hosts {
			if h.IsWildcard() {
				d := strings.TrimPrefix(h.String(), "*.")
				s.wildcard[d] = append(s.wildcard[d], p)
			} else {
				s.exact[h.String()] = append(s.exact[h.String()], p)
			}
		}
	}
	return s
}

// Older orders policies by precedence: older first, then by namespace and name. It returns a
// negative number when a comes first.
func Older(a, b *Policy) int {
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	if c := strings.Compare(a.ref.Namespace, b.ref.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.ref.Name, b.ref.Name)
}

// Policies returns every policy, oldest first.
func (s *Snapshot) Policies() iter.Seq[*Policy] {
	return func(yield func(*Policy) bool) {
		for _, p := range s.ordered {
			if !yield(p) {
				return
			}
		}
	}
}

// Len returns the number of policies.
func (s *Snapshot) Len() int { return len(s.byRef) }

// Get returns the policy a proxy named.
func (s *Snapshot) Get(ref Ref) (*Policy, bool) {
	p, ok := s.byRef[ref]
	return p, ok
}

// Route finds the policy and rule for a request that does not name its policy. host must come from
// NormalizeHost and path from NormalizePath. When policies name the host exactly, only they are
// tried; wildcards are tried only for hosts no policy names exactly, as with Ingress, so a wildcard
// policy can never loosen a host that has its own. Within a tier, policies are tried in precedence
// order and the first matching rule wins. It returns false when no policy claims the host or none
// of their rules matches.
func (s *Snapshot) Route(host, method, path string) (*Policy, *Rule, bool) {
	candidates, ok := s.exact[host]
	if !ok {
		if _, domain, cut := strings.Cut(host, "."); cut {
			candidates = s.wildcard[domain]
		}
	}
	for _, p := range candidates {
		if r, ok := p.Match(method, path); ok {
			return p, r, true
		}
	}
	return nil, nil, false
}
