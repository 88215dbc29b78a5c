package store

import (
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// recordValues lays out HSET pairs as the HMGET reply of fields: a value per field, nil (RESP2's
// missing field) where pairs left it out.
func recordValues(fields []string, pairs []any) []any {
	vals := make([]any, len(fields))
	for i := 0; i < len(pairs); i += 2 {
		for j, f := range fields {
			if f == pairs[i] {
				vals[j] = pairs[i+1]
			}
		}
	}
	return vals
}

// microTime is a time as Redis records keep it: microseconds, UTC; 0 is the zero time.
func microTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// FuzzDecodeSession writes a session record as CreateSession does and reads it back (every field
// must survive), then spoils one field with arbitrary text, as a record written by another
// version or by hand could be: decoding never panics, and an error names the field.
func FuzzDecodeSession(f *testing.F) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixMicro()
	f.Add("shop/shop", "admin@example.com", "admin@example.com", now, now+1, now+2, now, uint8(3), "1.7e15")
	f.Add("", "", "", int64(0), int64(1), int64(0), int64(-1), uint8(4), "")
	f.Add("p", "u\x00", "\xff", int64(-1), int64(1<<62), int64(0), int64(0), uint8(5), "NaN")
	f.Add("p", "u", "m", now, now, now, now, uint8(6), "9223372036854775808")
	f.Add("p", "u", "m", now, now, now, now, uint8(4), "-Inf")
	f.Add("p", "u", "m", now, now, now, now, uint8(0), "x")
	f.Fuzz(func(t *testing.T, pol, uid, mail string, crt, exp, max, seen int64, spoil uint8, junk string) {
		s := Session{Policy: pol, UserID: uid, Email: mail, CreatedAt: microTime(crt), ExpiresAt: microTime(exp),
			MaxExpiresAt: microTime(max), LastSeenAt: microTime(seen)}
		vals := recordValues(sessionFields, sessionPairs(s))
		got, ok, err := decodeSession(vals)
		switch {
		case err != nil:
			t.Fatalf("a record written from %+v does not decode: %v", s, err)
		case ok != !s.ExpiresAt.IsZero():
			t.Fatalf("record of %+v: exists %v", s, ok)
		case ok && !reflect.DeepEqual(got, s):
			t.Fatalf("record of %+v decodes to %+v", s, got)
		}
		i := int(spoil) % len(sessionFields)
		vals[i] = junk
		if _, _, err := decodeSession(vals); err != nil && !strings.Contains(err.Error(), sessionFields[i]) {
			t.Fatalf("spoiled field %s: error %q does not name it", sessionFields[i], err)
		}
		if _, _, err := decodeSession(vals[1:]); err == nil {
			t.Fatal("a record with a field missing decodes")
		}
	})
}

// FuzzDecodeToken is FuzzDecodeSession for refresh-token records, successor key included.
func FuzzDecodeToken(f *testing.F) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC).UnixMicro()
	f.Add("shop/shop", "admin@example.com", "admin@example.com", "fam", now, now+1, int64(0), []byte{}, uint8(7), "00")
	f.Add("p", "u", "m", "f", now, now, now, make([]byte, 32), uint8(7), strings.Repeat("ab", 32))
	f.Add("p", "u", "m", "f", now, now, now, []byte{1}, uint8(7), strings.Repeat("AB", 32))
	f.Add("p", "u", "m", "f", now, now, now, []byte{1}, uint8(7), strings.Repeat("a", 63))
	f.Add("p", "u", "m", "f", now, now, now, []byte{1}, uint8(4), "1e400")
	f.Fuzz(func(t *testing.T, pol, uid, mail, fam string, iat, exp, used int64, succ []byte, spoil uint8, junk string) {
		tok := RefreshToken{Policy: pol, UserID: uid, Email: mail, Family: fam, IssuedAt: microTime(iat), ExpiresAt: microTime(exp), UsedAt: microTime(used)}
		copy(tok.Successor[:], succ)
		vals := recordValues(tokenFields, tokenPairs(tok))
		got, err := decodeToken(vals)
		if err != nil || !reflect.DeepEqual(got, tok) {
			t.Fatalf("record of %+v decodes to %+v, %v", tok, got, err)
		}
		i := int(spoil) % len(tokenFields)
		vals[i] = junk
		got, err = decodeToken(vals)
		if err != nil && !strings.Contains(err.Error(), tokenFields[i]) {
			t.Fatalf("spoiled field %s: error %q does not name it", tokenFields[i], err)
		}
		if err == nil && tokenFields[i] == "succ" && junk != "" {
			if b, herr := hex.DecodeString(junk); herr != nil || string(b) != string(got.Successor[:]) {
				t.Fatalf("succ %q decodes to %x", junk, got.Successor)
			}
		}
	})
}

// FuzzDecodeRevocation reads revocation messages, as they arrive on the channel and sit in its
// sorted set (anything published there, by any client, reaches every replica): decoding never
// panics, and what decodes is written again (as queueRevocation does) into a message that decodes
// to the same revocation.
func FuzzDecodeRevocation(f *testing.F) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 123456000, time.UTC)
	for _, r := range []Revocation{
		{Kind: RevokeSession, Value: strings.Repeat("ab", 32), At: at, Until: at.Add(time.Hour)},
		{Kind: RevokeFamily, Policy: "shop/shop", Value: "fam", At: at, Until: at.Add(168 * time.Hour)},
		{Kind: RevokeUser, Policy: "shop/shop", Value: "admin@example.com", At: at, Until: at.Add(time.Minute)},
	} {
		msg, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	f.Add([]byte(`{"Kind":"user","At":"0000-01-01T00:00:00Z","Until":"9999-12-31T23:59:59.999999999+14:00"}`))
	f.Add([]byte(`{"Kind":1}`))
	f.Add([]byte(`{"kind":"session","value":"\ud800"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var rev Revocation
		if json.Unmarshal(msg, &rev) != nil {
			return
		}
		rev.At, rev.Until = rev.At.UTC(), rev.Until.UTC()
		again, err := json.Marshal(rev)
		if err != nil {
			return // a time outside years 0 to 9999, which no store writes
		}
		var back Revocation
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("%s, written again as %s, does not decode: %v", msg, again, err)
		}
		if back.Kind != rev.Kind || back.Policy != rev.Policy || back.Value != rev.Value || !back.At.Equal(rev.At) || !back.Until.Equal(rev.Until) {
			t.Fatalf("%s decodes to %+v, written again to %+v", msg, rev, back)
		}
	})
}
