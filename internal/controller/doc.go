// Package controller holds the operator's reconcilers: AuthPolicy (status, conflicts, signing keys)
// and Ingress (the ingress-nginx auth annotations of Ingresses that name a policy). Policies are
// compiled with internal/policy, exactly as the webhook compiles them, so the status the operator
// writes is what the webhook enforces. The package writes status and the objects it owns; it never
// serves checks and never modifies a Secret or annotation a person wrote.
package controller
