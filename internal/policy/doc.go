// Package policy turns AuthPolicy objects and the Secrets they reference into compiled, immutable
// policies, and owns request matching.
//
// Compile is pure: it reads an AuthPolicy and the data of its Secrets and returns either a *Policy or
// a *CompileError listing every problem with its field path, split into problems of the spec itself
// (the operator reports them as Accepted=False) and problems of referenced Secrets (ResolvedRefs=False).
// The webhook and the operator call the same function, so the operator's verdict and the webhook's
// behaviour cannot drift. Compile applies the schema's defaults and checks every schema rule again,
// because policies read from files in standalone mode never pass through an API server.
//
// Matching is done here too, once and the same way for every protocol: NormalizeHost and
// NormalizePath turn what a proxy sent into the canonical form that Snapshot.Route and Policy.Match
// compare against. The rules of that normalization are security decisions; they are explained where
// they are made.
//
// The package does no I/O: it fetches no JWKS, reads no files and talks to no API server. A compiled
// Policy is never modified after Compile returns, so a Snapshot can be shared by every request
// without locks and replaced with one atomic swap.
package policy
