// Package token issues authgate's access tokens and verifies bearer tokens: authgate's own and
// those of the external issuers a policy trusts, whose keys it fetches from their JWKS URLs.
//
// Access tokens are compact JWS (RFC 7515) JWTs (RFC 7519) of type "at+jwt" (RFC 9068), signed with
// the active key of a policy's signing-key Secret. Issue signs one; a Verifier checks one against a
// compiled policy and returns its Claims or an *Error whose Reason says why it was refused.
// PublicJWKS publishes the public halves of the policies' asymmetric keys.
//
// # What Verify refuses, in order
//
//   - A token longer than MaxTokenSize (TooLarge), before anything else is looked at.
//   - Anything but three non-empty base64url segments (no padding, no white space, canonical
//     encoding), a header or payload that is not a JSON object in UTF-8, or an empty signature
//     (Malformed). Of repeated member names the last counts, as RFC 7515 and RFC 7519 allow.
//   - A "crit" header, whatever it lists (Malformed): no JWS extension is understood, and RFC 7515
//     says a JWS with a critical extension the recipient does not understand is invalid. A "b64"
//     header too (Malformed): RFC 7797 unencoded payloads change what the signature covers.
//   - "alg" missing, "none" in any case, or other than ES256, RS256, EdDSA and HS256 (BadAlgorithm).
//   - The unverified "iss" picks the keys: the policy's jwt.issuer selects its own keys, a trusted
//     issuer selects the keys of its JWKS, anything else is UnknownIssuer. A token that names another
//     issuer but verifies with one of the policy's own keys is WrongIssuer (a token issued before
//     jwt.issuer changed, typically).
//   - Own tokens: "alg" must be the policy's jwt.algorithm (BadAlgorithm; this is what stops an
//     HS256 token MACed with an ES256 or RS256 public key), "typ" must be at+jwt (Malformed), "kid"
//     must name one of the policy's verification keys (UnknownKey).
//   - Trusted issuers' tokens: "alg" must be ES256, RS256 or EdDSA, never HS256 (BadAlgorithm);
//     "kid" must name a key of the issuer's JWKS whose algorithm is "alg" (UnknownKey, or
//     BadAlgorithm when the kid exists with another algorithm). A JWKS that cannot be fetched, with
//     no earlier copy to fall back on, is Unavailable.
//   - The signature, checked with the key's algorithm, never the header's (BadSignature).
//   - Claims of the wrong JSON type: iss, sub, jti, sid must be strings, aud a string or a list of
//     strings, exp, nbf, iat numbers (Malformed). email, name and roles of another type are ignored.
//   - "aud" sharing no audience with the policy (or the trusted issuer's audiences) (WrongAudience);
//     "exp" missing (Malformed) or passed (Expired); "nbf" or "iat" in the future (NotYetValid);
//     jwt.clockSkew of leeway on each.
//   - Last, the Denylist (Revoked).
//
// The "jku", "x5u", "jwk" and "x5c" headers are ignored: they are never read, so a token can never
// point at its own keys. Keys are only ever the policy's own or those fetched from the JWKS URL the
// policy names.
//
// # Trusted issuers' keys
//
// Each JWKS URL has one cache entry per Verifier, shared by every policy that trusts the issuer.
// The first token for an issuer fetches its JWKS (concurrent callers wait for the same fetch); after
// that a timer refreshes it in the background every 15 minutes, or after the response's
// Cache-Control max-age bounded to [1m, 24h]. A token whose kid the set lacks triggers one
// synchronous refetch unless the last fetch of that URL started less than 30 seconds ago. A failed
// fetch keeps the previous set in use and is retried in the background after a minute; without a
// previous set, tokens of that issuer are Unavailable, and requests fetch again at most every 5
// seconds. An entry not used for 24 hours stops being refreshed and is dropped.
//
// Keys of a JWKS without "alg" get it from their type only where that is unambiguous: EC P-256 is
// ES256, OKP Ed25519 is EdDSA, RSA is RS256. Symmetric keys, keys without a kid, keys with "use"
// other than "sig" or "key_ops" without "verify", RSA keys under 2048 bits, keys of other
// algorithms, and private keys (published by mistake, so anyone may hold them) are ignored. One kid
// may have keys of several algorithms; the token's "alg" picks among them.
//
// Fetches use a client of their own (never http.DefaultClient) with a 5 second limit, responses are
// read up to 1 MiB, and redirects are followed at most 3 times and never from https to http.
//
// # Costs
//
// A policy's own keys are converted once per compiled policy and cached by a weak pointer to it,
// so replaced policies do not leak. Verifying parses the header and payload once; the signature is
// checked with jwx's jwsbb building blocks after this package's own checks.
package token
