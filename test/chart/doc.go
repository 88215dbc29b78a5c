// Package chart holds the tests of the Helm chart. They render the Helm chart in charts/authgate with Helm's own Go packages, for
// the default values and a matrix of others, lints it, and has a real kube-apiserver (envtest)
// validate every rendered object with a server-side dry-run apply in a namespace that enforces
// the "restricted" Pod Security profile. Go assertions check what the API server cannot: flags
// the binaries accept, probes, mounts, RBAC no wider than the markers generate, the values schema.
package chart
