package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/signingkey"
)

// Annotations of a signing-key Secret the operator manages. They hold the rotation schedule, so that
// a restarted or newly elected operator continues it where the last one left off.
const (
	// annotationActiveSince is when the active key started signing (RFC 3339).
	annotationActiveSince = "authgate.dev/active-since"
	// annotationNextKID names the key that will sign after the next rotation. It is in the Secret,
	// and so published in the JWKS, a whole rotation period before it signs: every replica and
	// every client that caches the JWKS knows it before the first token it signs arrives.
	annotationNextKID = "authgate.dev/next-kid"
	// annotationRetired maps each retired kid to when it stopped signing (a JSON object of
	// RFC 3339 times). A retired key verifies until accessTokenTTL plus clockSkew has passed.
	annotationRetired = "authgate.dev/retired"
)

// keyRing is a managed signing-key Secret read into its parts: the data (the format of
// internal/policy: "active-kid", "<kid>.key.pem" or "<kid>.secret", "<kid>.pub.pem") and the schedule
// in its annotations. Its methods are pure: the reconciler reads a ring, lets time act on it, and
// writes it back.
type keyRing struct {
	alg         authgatev1.Algorithm
	data        map[string][]byte
	active      string
	activeSince time.Time
	next        string
	retired     map[string]time.Time
}

// newKeyRing makes the keys of a new Secret: one that signs from now and the next one.
func newKeyRing(alg authgatev1.Algorithm, now time.Time) (*keyRing, error) {
	active, data, err := signingkey.Generate(alg, now)
	if err != nil {
		return nil, err
	}
	k := &keyRing{alg: alg, data: data, active: active, activeSince: now, retired: map[string]time.Time{}}
	if err := k.addNext(now); err != nil {
		return nil, err
	}
	return k, nil
}

// privateSuffix is the data key suffix of the algorithm's private keys.
func privateSuffix(alg authgatev1.Algorithm) string {
	if alg == authgatev1.AlgorithmHS256 {
		return authgatev1.SigningKeySecretSuffix
	}
	return authgatev1.SigningKeyPrivateSuffix
}

func (k *keyRing) addNext(now time.Time) error {
	kid, data, err := signingkey.Generate(k.alg, now)
	if err != nil {
		return err
	}
	suffix := privateSuffix(k.alg)
	k.data[kid+suffix] = data[kid+suffix]
	k.next = kid
	return nil
}

// parseKeyRing reads a managed Secret. It fails when the schedule annotations are missing or do not
// match the data, which happens only when someone edited the Secret by hand: the reconciler then
// reports it and leaves it alone rather than guess which key is which.
func parseKeyRing(alg authgatev1.Algorithm, annotations map[string]string, data map[string][]byte) (*keyRing, error) {
	k := &keyRing{alg: alg, data: maps.Clone(data), retired: map[string]time.Time{}}
	if k.data == nil {
		k.data = map[string][]byte{}
	}
	k.active = strings.TrimSpace(string(data[authgatev1.SigningKeyActiveKey]))
	k.next = annotations[annotationNextKID]
	since, err := time.Parse(time.RFC3339, annotations[annotationActiveSince])
	if err != nil {
		return nil, fmt.Errorf("annotation %s: %w", annotationActiveSince, err)
	}
	k.activeSince = since
	if raw := annotations[annotationRetired]; raw != "" {
		var retired map[string]string
		if err := json.Unmarshal([]byte(raw), &retired); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", annotationRetired, err)
		}
		for kid, at := range retired {
			t, err := time.Parse(time.RFC3339, at)
			if err != nil {
				return nil, fmt.Errorf("annotation %s: key %s: %w", annotationRetired, kid, err)
			}
			k.retired[kid] = t
		}
	}
	suffix := privateSuffix(alg)
	for _, kid := range []string{k.active, k.next} {
		if _, ok := data[kid+suffix]; kid == "" || !ok {
			return nil, fmt.Errorf("the active key %q or the next key %q (annotation %s) has no %s entry", k.active, k.next, annotationNextKID, suffix)
		}
	}
	return k, nil
}

// annotations returns the schedule as the Secret's annotations.
func (k *keyRing) annotations() map[string]string {
	retired := make(map[string]string, len(k.retired))
	for kid, at := range k.retired {
		retired[kid] = at.UTC().Format(time.RFC3339Nano)
	}
	raw, _ := json.Marshal(retired) // a map of strings always marshals
	return map[string]string{
		annotationActiveSince: k.activeSince.UTC().Format(time.RFC3339Nano),
		annotationNextKID:     k.next,
		annotationRetired:     string(raw),
	}
}

// rotationDue returns when the active key is to be replaced.
func (k *keyRing) rotationDue(period time.Duration) time.Time { return k.activeSince.Add(period) }

// rotate makes the next key sign, retires the active one (keeping only its public key, or for
// HS256 the shared secret, which is all verification needs) and makes a new next key.
func (k *keyRing) rotate(now time.Time) error {
	old := k.active
	if k.alg == authgatev1.AlgorithmHS256 {
		// An HS256 key verifies with the secret it signs with: the entry stays as it is.
	} else {
		pub, err := signingkey.PublicPEM(k.data[old+authgatev1.SigningKeyPrivateSuffix])
		if err != nil {
			return fmt.Errorf("retiring key %s: %w", old, err)
		}
		delete(k.data, old+authgatev1.SigningKeyPrivateSuffix)
		k.data[old+authgatev1.SigningKeyPublicSuffix] = pub
	}
	k.retired[old] = now
	k.active, k.activeSince = k.next, now
	k.data[authgatev1.SigningKeyActiveKey] = []byte(k.active)
	return k.addNext(now)
}

// prune removes the retired keys whose last token has expired: retired more than keep ago. It
// returns their kids, sorted.
func (k *keyRing) prune(now time.Time, keep time.Duration) []string {
	var gone []string
	for kid, at := range k.retired {
		if !now.Before(at.Add(keep)) {
			gone = append(gone, kid)
			delete(k.retired, kid)
			delete(k.data, kid+authgatev1.SigningKeyPublicSuffix)
			if k.alg == authgatev1.AlgorithmHS256 {
				delete(k.data, kid+authgatev1.SigningKeySecretSuffix)
			}
		}
	}
	sort.Strings(gone)
	return gone
}

// nextEvent returns when the ring next needs attention: a rotation or a prune.
func (k *keyRing) nextEvent(period, keep time.Duration) time.Time {
	t := k.rotationDue(period)
	for _, at := range k.retired {
		if p := at.Add(keep); p.Before(t) {
			t = p
		}
	}
	return t
}
