package controller

import (
	"maps"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// FuzzParseKeyRing reads managed signing-key Secrets whose schedule annotations and active-kid
// someone may have edited by hand: reading never panics; a ring it reads names an active and a next
// key that the data holds, and writing its schedule back gives annotations that read to the same
// ring.
func FuzzParseKeyRing(f *testing.F) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	ring, err := newKeyRing(authgatev1.AlgorithmES256, t0)
	if err != nil {
		f.Fatal(err)
	}
	if err := ring.rotate(t0.Add(time.Hour)); err != nil {
		f.Fatal(err)
	}
	a := ring.annotations()
	f.Add(a[annotationActiveSince], a[annotationNextKID], a[annotationRetired], ring.active)
	f.Add("2026-11-29T10:00:00+02:00", a[annotationNextKID], `{"k":"2026-11-29T10:00:00.123456789Z","":"2026-01-01T00:00:00Z"}`, ring.active)
	f.Add("2026-11-29T10:00:00Z", ring.active, "", ring.active)
	f.Add("2026-11-29 10:00:00", a[annotationNextKID], "{", ring.active)
	f.Add("2026-11-29T10:00:00Z", a[annotationNextKID], `{"k":"yesterday"}`, " "+ring.active+"\n")
	f.Add("0000-01-01T00:00:00Z", "", `null`, "")
	f.Add("9999-12-31T23:59:60Z", a[annotationNextKID], `[]`, "other")
	f.Fuzz(func(t *testing.T, since, next, retired, active string) {
		annotations := map[string]string{annotationActiveSince: since, annotationNextKID: next, annotationRetired: retired}
		data := maps.Clone(ring.data)
		data[authgatev1.SigningKeyActiveKey] = []byte(active)
		k, err := parseKeyRing(authgatev1.AlgorithmES256, annotations, data)
		if err != nil {
			return
		}
		for _, kid := range []string{k.active, k.next} {
			if _, ok := data[kid+authgatev1.SigningKeyPrivateSuffix]; kid == "" || !ok {
				t.Fatalf("ring read with key %q, which has no entry", kid)
			}
		}
		again, err := parseKeyRing(authgatev1.AlgorithmES256, k.annotations(), data)
		if err != nil {
			t.Fatalf("the ring's own annotations %q do not read: %v", k.annotations(), err)
		}
		if again.active != k.active || again.next != k.next || !again.activeSince.Equal(k.activeSince) || len(again.retired) != len(k.retired) {
			t.Fatalf("ring %+v is read back as %+v", k, again)
		}
		for kid, at := range k.retired {
			if !again.retired[kid].Equal(at) {
				t.Fatalf("retired key %q at %v is read back at %v", kid, at, again.retired[kid])
			}
		}
		_ = k.nextEvent(time.Hour, time.Hour)
	})
}
