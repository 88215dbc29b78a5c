package v1

// Condition types of an AuthPolicy. Each is True, False or Unknown and carries one of the reasons
// below.
const (
	// ConditionAccepted is True when the spec compiles and the policy claims no host and path that an
	// older policy already claims.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs is True when every Secret the policy references exists and parses.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionReady is True when Accepted and ResolvedRefs are both True, so the webhook enforces the
	// policy as written.
	ConditionReady = "Ready"
	// ConditionIngressesWired is True when every Ingress in the policy's namespace annotated with
	// authgate.dev/policy naming it carries the auth annotations the operator manages. It does not
	// feed Ready: Ready is about the webhook, this is about how Ingresses reach it.
	ConditionIngressesWired = "IngressesWired"
)

// Reasons for the Accepted condition.
const (
	// ReasonAccepted: the spec compiles.
	ReasonAccepted = "Accepted"
	// ReasonInvalid: the spec does not compile; the message lists each problem with its field path.
	ReasonInvalid = "Invalid"
	// ReasonConflicted: an older policy claims the same host and path; the message names it.
	ReasonConflicted = "Conflicted"
)

// Reasons for the ResolvedRefs condition.
const (
	// ReasonResolvedRefs: every referenced Secret exists and parses.
	ReasonResolvedRefs = "ResolvedRefs"
	// ReasonSecretNotFound: a referenced Secret does not exist; the message names it.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretInvalid: a referenced Secret lacks a key or its content does not parse; the message
	// names the Secret, the key and what is wrong.
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonKeyPending: the signing-key Secret does not exist and the operator could not create it
	// yet; the message says why, and the operator keeps trying.
	ReasonKeyPending = "KeyPending"
)

// Reasons for the Ready condition.
const (
	// ReasonReady: the policy is accepted and its references resolve.
	ReasonReady = "Ready"
	// ReasonNotAccepted: Accepted is not True.
	ReasonNotAccepted = "NotAccepted"
	// ReasonRefsNotResolved: ResolvedRefs is not True.
	ReasonRefsNotResolved = "RefsNotResolved"
)

// Reasons for the IngressesWired condition.
const (
	// ReasonWired: every Ingress that names the policy is wired (or none names it).
	ReasonWired = "Wired"
	// ReasonAnnotationConflict: an Ingress that names the policy already has an auth annotation that
	// a person set; the operator leaves it alone. The message names the Ingress and the annotation.
	ReasonAnnotationConflict = "AnnotationConflict"
)

// Annotations and Secret keys that are part of the API.
const (
	// PolicyAnnotation on an Ingress names the AuthPolicy (same namespace) that guards it.
	PolicyAnnotation = "authgate.dev/policy"
	// ManagedAnnotationsAnnotation on an Ingress lists, comma-separated, the annotations the operator
	// set, so that it removes exactly those when the policy annotation or the policy goes away.
	ManagedAnnotationsAnnotation = "authgate.dev/managed-annotations"
	// ManagedByLabel marks a signing-key Secret the operator created ("app.kubernetes.io/managed-by"
	// set to ManagedByValue); with its owner reference to the policy, it is what lets the operator
	// rotate the Secret. A Secret without both is a user's and is never modified.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel on Secrets the operator created.
	ManagedByValue = "authgate-operator"

	// UsersSecretKey is the key of the users Secret that lists users, in YAML.
	UsersSecretKey = "users.yaml"

	// SigningKeyActiveKey is the key of a signing-key Secret that names the kid of the key that signs.
	// It may be left out when the Secret holds exactly one private key.
	SigningKeyActiveKey = "active-kid"
	// SigningKeyPrivateSuffix ends the key "<kid>.key.pem" that holds a PEM private key (PKCS#8,
	// PKCS#1 or SEC 1) of the policy's algorithm.
	SigningKeyPrivateSuffix = ".key.pem"
	// SigningKeyPublicSuffix ends the key "<kid>.pub.pem" that holds a retired key's PEM public key,
	// kept so that tokens it signed still verify until they expire.
	SigningKeyPublicSuffix = ".pub.pem"
	// SigningKeySecretSuffix ends the key "<kid>.secret" that holds an HS256 shared secret of at
	// least 32 bytes.
	SigningKeySecretSuffix = ".secret"
)
