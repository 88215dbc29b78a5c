package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

// minBcryptCost is the weakest bcrypt cost accepted for a password hash. bcrypt's own default is 10;
// anything lower makes offline guessing of a leaked Secret cheap.
const minBcryptCost = 10

// minHMACSecret is the shortest HS256 secret accepted: RFC 7518 requires a key at least as long as
// the hash output (256 bits).
const minHMACSecret = 32

var (
	kidPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	claimValue = regexp.MustCompile(`^[!-~]+$`)
)

// DecodeStrict decodes YAML (or JSON) the way the API server decodes JSON: field names match exactly
// (not case-insensitively, as encoding/json would) and unknown or repeated fields are errors, so a
// typo in a manifest or a Secret is reported instead of silently dropped.
func DecodeStrict(data []byte, v any) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func isDNSSubdomain(s string) bool { return len(validation.IsDNS1123Subdomain(s)) == 0 }

// secretKeyPath is the field path of a key inside a referenced Secret, for error messages:
// spec.jwt.signingKeySecretRef.name[shop-jwt-keys].data[active-kid].
func secretKeyPath(path *field.Path, secret, key string) *field.Path {
	return path.Key(secret).Child("data").Key(key)
}

// usersFile is the schema of the users Secret's users.yaml.
type usersFile []struct {
	ID           string   `json:"id,omitempty"`
	Email        string   `json:"email"`
	Name         string   `json:"name,omitempty"`
	PasswordHash string   `json:"passwordHash"`
	Roles        []string `json:"roles,omitempty"`
	Disabled     bool     `json:"disabled,omitempty"`
}

// parseUsers reads the users Secret. Any problem makes the whole Secret unresolved: a login that
// silently skips a malformed entry would lock that user out without anyone knowing why.
func parseUsers(path *field.Path, secret string, data map[string][]byte) (map[string]User, field.ErrorList) {
	key := authgatev1.UsersSecretKey
	kp := secretKeyPath(path, secret, key)
	raw, ok := data[key]
	if !ok {
		return nil, field.ErrorList{field.Invalid(path, secret, fmt.Sprintf("Secret %s has no key %q listing the users", secret, key))}
	}
	var file usersFile
	if err := DecodeStrict(raw, &file); err != nil {
		return nil, field.ErrorList{field.Invalid(kp, "(users)", fmt.Sprintf("does not parse as a YAML list of users: %v", err))}
	}
	var errs field.ErrorList
	users := make(map[string]User, len(file))
	ids := map[string]bool{}
	for i, u := range file {
		up := kp.Index(i)
		email := strings.ToLower(strings.TrimSpace(u.Email))
		if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || addr.Name != "" {
			errs = append(errs, field.Invalid(up.Child("email"), u.Email, "must be a plain email address such as admin@example.com"))
			continue
		}
		if _, dup := users[email]; dup {
			errs = append(errs, field.Duplicate(up.Child("email"), u.Email))
			continue
		}
		id := u.ID
		if id == "" {
			id = email
		}
		if len(id) > 256 || !claimValue.MatchString(id) {
			errs = append(errs, field.Invalid(up.Child("id"), u.ID, "must be 1 to 256 printable characters without spaces"))
			continue
		}
		if ids[id] {
			errs = append(errs, field.Duplicate(up.Child("id"), id))
			continue
		}
		ids[id] = true
		// The hash itself is never put into a message: it is a secret.
		cost, err := bcrypt.Cost([]byte(u.PasswordHash))
		switch {
		case u.PasswordHash == "":
			errs = append(errs, field.Required(up.Child("passwordHash"), "a bcrypt hash ($2a$, $2b$ or $2y$)"))
			continue
		case err != nil:
			errs = append(errs, field.Invalid(up.Child("passwordHash"), "(hidden)", "is not a bcrypt hash ($2a$, $2b$ or $2y$): "+err.Error()))
			continue
		case cost < minBcryptCost:
			errs = append(errs, field.Invalid(up.Child("passwordHash"), "(hidden)", fmt.Sprintf("bcrypt cost %d is below the minimum %d", cost, minBcryptCost)))
			continue
		}
		for j, r := range u.Roles {
			if !roleName.MatchString(r) || len(r) > 63 {
				errs = append(errs, field.Invalid(up.Child("roles").Index(j), r, "must be letters, digits and -_.: , at most 63 characters"))
			}
		}
		users[email] = User{
			ID: id, Email: email, Name: u.Name, Disabled: u.Disabled,
			passwordHash: []byte(u.PasswordHash), roles: append([]string(nil), u.Roles...),
		}
	}
	return users, errs
}

// parseSigningKeys reads a signing-key Secret: "<kid>.key.pem" private keys (or "<kid>.secret" for
// HS256), "<kid>.pub.pem" retired public keys, and "active-kid" naming the signing key, which may be
// left out when there is exactly one private key. Every key must suit alg: a key of another type
// is refused rather than used with the algorithm it implies, the root of algorithm confusion.
func parseSigningKeys(path *field.Path, secret string, alg authgatev1.Algorithm, data map[string][]byte) (*KeySet, field.ErrorList) {
	var errs field.ErrorList
	bad := func(key, msg string) {
		errs = append(errs, field.Invalid(secretKeyPath(path, secret, key), "(key material hidden)", msg))
	}
	privSuffix := authgatev1.SigningKeyPrivateSuffix
	if alg == authgatev1.AlgorithmHS256 {
		privSuffix = authgatev1.SigningKeySecretSuffix
	}
	private := map[string]SigningKey{}
	var public []VerificationKey
	for _, key := range sortedKeys(data) {
		value := data[key]
		switch {
		case key == authgatev1.SigningKeyActiveKey:
		case strings.HasSuffix(key, privSuffix):
			kid := strings.TrimSuffix(key, privSuffix)
			if !kidPattern.MatchString(kid) {
				bad(key, "the kid before "+privSuffix+" must be 1 to 64 characters of letters, digits and ._-")
				continue
			}
			sk, err := parsePrivateKey(alg, value)
			if err != nil {
				bad(key, err.Error())
				continue
			}
			sk.kid = kid
			private[kid] = sk
		case strings.HasSuffix(key, authgatev1.SigningKeyPublicSuffix) && alg != authgatev1.AlgorithmHS256:
			kid := strings.TrimSuffix(key, authgatev1.SigningKeyPublicSuffix)
			if !kidPattern.MatchString(kid) {
				bad(key, "the kid before .pub.pem must be 1 to 64 characters of letters, digits and ._-")
				continue
			}
			pub, err := parsePublicKey(alg, value)
			if err != nil {
				bad(key, err.Error())
				continue
			}
			public = append(public, VerificationKey{kid: kid, alg: alg, public: pub})
		default:
			want := fmt.Sprintf("%s, <kid>%s", authgatev1.SigningKeyActiveKey, privSuffix)
			if alg != authgatev1.AlgorithmHS256 {
				want += " or <kid>" + authgatev1.SigningKeyPublicSuffix
			}
			bad(key, fmt.Sprintf("unexpected key for algorithm %s: want %s", alg, want))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	active := strings.TrimSpace(string(data[authgatev1.SigningKeyActiveKey]))
	switch {
	case active == "" && len(private) == 1:
		for kid := range private {
			active = kid
		}
	case active == "" && len(private) == 0:
		return nil, field.ErrorList{field.Invalid(path, secret, fmt.Sprintf("Secret %s holds no signing key: want a <kid>%s entry", secret, privSuffix))}
	case active == "":
		return nil, field.ErrorList{field.Invalid(path, secret, fmt.Sprintf("Secret %s holds %d signing keys: name the one that signs in %q", secret, len(private), authgatev1.SigningKeyActiveKey))}
	}
	sk, ok := private[active]
	if !ok {
		return nil, field.ErrorList{field.Invalid(secretKeyPath(path, secret, authgatev1.SigningKeyActiveKey), active,
			fmt.Sprintf("names no key of this Secret: want a key %s%s", active, privSuffix))}
	}
	set := &KeySet{active: sk}
	// The active key verifies first; then other private keys (about to sign, or just retired) and
	// retired public keys, in kid order.
	set.verify = append(set.verify, sk.verification())
	for _, kid := range sortedKeys(private) {
		if kid != active {
			set.verify = append(set.verify, private[kid].verification())
		}
	}
	sort.Slice(public, func(i, j int) bool { return public[i].kid < public[j].kid })
	for _, pk := range public {
		if _, dup := private[pk.kid]; dup {
			return nil, field.ErrorList{field.Invalid(secretKeyPath(path, secret, pk.kid+authgatev1.SigningKeyPublicSuffix), pk.kid,
				"a kid cannot have both a private and a public key entry")}
		}
		set.verify = append(set.verify, pk)
	}
	return set, nil
}

func (k SigningKey) verification() VerificationKey {
	v := VerificationKey{kid: k.kid, alg: k.alg, secret: k.secret}
	if k.signer != nil {
		v.public = k.signer.Public()
	}
	return v
}

func parsePrivateKey(alg authgatev1.Algorithm, data []byte) (SigningKey, error) {
	if alg == authgatev1.AlgorithmHS256 {
		if len(data) < minHMACSecret {
			return SigningKey{}, fmt.Errorf("an HS256 secret must be at least %d bytes, this one has %d", minHMACSecret, len(data))
		}
		return SigningKey{alg: alg, secret: append([]byte(nil), data...)}, nil
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return SigningKey{}, fmt.Errorf("is not PEM: want a PRIVATE KEY block")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return SigningKey{}, fmt.Errorf("holds more than one PEM block: want exactly one private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return SigningKey{}, fmt.Errorf("PEM block %q is not a private key: want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY", block.Type)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("does not parse: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return SigningKey{}, fmt.Errorf("holds a %T, which cannot sign", key)
	}
	if err := keySuits(alg, signer.Public()); err != nil {
		return SigningKey{}, err
	}
	return SigningKey{alg: alg, signer: signer}, nil
}

func parsePublicKey(alg authgatev1.Algorithm, data []byte) (crypto.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("is not PEM with a PUBLIC KEY block")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, fmt.Errorf("holds more than one PEM block: want exactly one public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	return pub, keySuits(alg, pub)
}

// keySuits checks that a public key is of the type and size the algorithm needs.
func keySuits(alg authgatev1.Algorithm, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg == authgatev1.AlgorithmES256 && k.Curve == elliptic.P256() {
			return nil
		}
		return fmt.Errorf("is an ECDSA %s key, which does not suit algorithm %s (ES256 needs P-256)", k.Curve.Params().Name, alg)
	case *rsa.PublicKey:
		if alg != authgatev1.AlgorithmRS256 {
			return fmt.Errorf("is an RSA key, which does not suit algorithm %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("is a %d-bit RSA key: RS256 needs at least 2048 bits", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		if alg == authgatev1.AlgorithmEdDSA {
			return nil
		}
		return fmt.Errorf("is an Ed25519 key, which does not suit algorithm %s", alg)
	default:
		return fmt.Errorf("is a %T, which no supported algorithm uses", pub)
	}
}
