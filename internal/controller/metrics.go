package controller

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the operator's own metrics. controller-runtime serves them with its own (reconciles,
// work queues, leader election, API requests) from the registry they are registered on.
type Metrics struct {
	rotations *prometheus.CounterVec
}

// NewMetrics registers the operator's metrics on reg: the operator passes controller-runtime's
// metrics.Registry. Registering them again on the same registry (a second Run in one process, as
// tests do) returns the ones registered first.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	rotations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_signing_key_rotations_total",
		Help: "Signing keys rotated by the operator (the next key started signing), by policy.",
	}, []string{"policy"})
	if err := reg.Register(rotations); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			return nil, err
		}
		existing, ok := already.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, err
		}
		rotations = existing
	}
	return &Metrics{rotations: rotations}, nil
}

// keyRotated counts a rotation of the signing key of policy ("<namespace>/<name>"). A nil Metrics
// counts nothing.
func (m *Metrics) keyRotated(policy string) {
	if m != nil {
		m.rotations.WithLabelValues(policy).Inc()
	}
}
