package signingkey_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
	"github.com/authgate/authgate/internal/signingkey"
)

// FuzzPublicPEM derives public keys from arbitrary private-key entries, as the operator does when
// it retires a key of a Secret that someone may have edited: it never panics, and a public key it
// returns is one PEM PUBLIC KEY block of exactly the private key's public half.
func FuzzPublicPEM(f *testing.F) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for _, alg := range []authgatev1.Algorithm{authgatev1.AlgorithmES256, authgatev1.AlgorithmEdDSA} {
		kid, data, err := signingkey.Generate(alg, now)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[kid+authgatev1.SigningKeyPrivateSuffix])
	}
	es := fixture.PrivateKeyPEM(fixture.ES256Key())
	f.Add(es)
	f.Add(bytes.Replace(es, []byte("PRIVATE KEY"), []byte("EC PRIVATE KEY"), 2))
	f.Add(fixture.PublicKeyPEM(fixture.ES256Key().Public()))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("not PEM"))
	f.Fuzz(func(t *testing.T, private []byte) {
		pub, err := signingkey.PublicPEM(private)
		if err != nil {
			if pub != nil {
				t.Fatal("a public key with an error")
			}
			return
		}
		block, rest := pem.Decode(pub)
		if block == nil || block.Type != "PUBLIC KEY" || len(rest) != 0 {
			t.Fatalf("PublicPEM gave %q", pub)
		}
		got, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatalf("PublicPEM gave a public key that does not parse: %v", err)
		}
		in, _ := pem.Decode(private)
		key, err := x509.ParsePKCS8PrivateKey(in.Bytes)
		if err != nil {
			t.Fatalf("PublicPEM accepted a private key that does not parse: %v", err)
		}
		want := key.(interface{ Public() crypto.PublicKey }).Public()
		if eq, ok := want.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(got) {
			t.Fatalf("PublicPEM gave %T, not the private key's public half", got)
		}
	})
}
