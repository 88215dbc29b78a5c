// Package signingkey makes signing keys in the format of a signing-key Secret (see api/v1:
// "active-kid", "<kid>.key.pem", "<kid>.secret"). The webhook uses it in standalone mode when a
// policy's Secret is missing; the operator will use it to create and rotate Secrets. It only makes
// keys: parsing and checking them is internal/policy's job.
package signingkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base32"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// rsaBits is the size of generated RSA keys.
const rsaBits = 3072

// KID returns a new key ID: the date, so that operators can tell keys apart at a glance, and 40
// random bits, so that IDs never collide across policies or rotations ("2026-11-29-k7d2m4xq").
func KID(now time.Time) (string, error) {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes for a key ID: %w", err)
	}
	return now.UTC().Format("2006-01-02") + "-" + strings.ToLower(base32.StdEncoding.EncodeToString(b)), nil
}

// Generate makes a new key for alg and returns its kid and the Secret data that holds it as the
// active key.
func Generate(alg authgatev1.Algorithm, now time.Time) (kid string, data map[string][]byte, err error) {
	kid, err = KID(now)
	if err != nil {
		return "", nil, err
	}
	data = map[string][]byte{authgatev1.SigningKeyActiveKey: []byte(kid)}
	if alg == authgatev1.AlgorithmHS256 {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return "", nil, fmt.Errorf("reading random bytes for an HS256 secret: %w", err)
		}
		data[kid+authgatev1.SigningKeySecretSuffix] = secret
		return kid, data, nil
	}
	var key any
	switch alg {
	case authgatev1.AlgorithmES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case authgatev1.AlgorithmRS256:
		key, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case authgatev1.AlgorithmEdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return "", nil, fmt.Errorf("cannot generate a key for algorithm %q", alg)
	}
	if err != nil {
		return "", nil, fmt.Errorf("generating a %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", nil, fmt.Errorf("encoding a %s key: %w", alg, err)
	}
	data[kid+authgatev1.SigningKeyPrivateSuffix] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return kid, data, nil
}

// PublicPEM returns the PEM public key ("PUBLIC KEY", PKIX) of a PEM PKCS#8 private key that
// Generate made: what a rotated-out key leaves behind so that the tokens it signed still verify.
func PublicPEM(privatePEM []byte) ([]byte, error) {
	block, _ := pem.Decode(privatePEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("not a PEM PRIVATE KEY block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing a private key: %w", err)
	}
	signer, ok := key.(interface{ Public() crypto.PublicKey })
	if !ok {
		return nil, fmt.Errorf("a %T has no public key", key)
	}
	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding a public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
