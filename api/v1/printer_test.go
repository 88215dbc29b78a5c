package v1_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	authgatev1 "github.com/authgate/authgate/api/v1"
	"github.com/authgate/authgate/internal/fixture"
)

// TestPrinterColumns asks the API server for the table `kubectl get authpolicies` prints, and for the
// resource by its short name.
func TestPrinterColumns(t *testing.T) {
	ctx := context.Background()
	p := fixture.AuthPolicy()
	p.Namespace = namespace(t)
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.Status.Modes = p.Spec.ModeSummary()
	p.Status.Conditions = []metav1.Condition{{
		Type: authgatev1.ConditionReady, Status: metav1.ConditionFalse, Reason: authgatev1.ReasonRefsNotResolved,
		Message: "Secret shop-users not found", LastTransitionTime: metav1.NewTime(time.Now()),
	}}
	if err := k8s.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.GroupVersion = &authgatev1.GroupVersion
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rc.Get().Namespace(p.Namespace).Resource("authpolicies").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Fatal(err)
	}
	var columns []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			columns = append(columns, c.Name)
		}
	}
	if want := []string{"Name", "Modes", "Ready", "Age"}; !slices.Equal(columns, want) {
		t.Errorf("default columns = %v, want %v", columns, want)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(table.Rows))
	}
	cells := map[string]any{}
	for i, c := range table.ColumnDefinitions {
		cells[c.Name] = table.Rows[0].Cells[i]
	}
	if cells["Modes"] != "Public,JWT,Session" || cells["Ready"] != "False" || cells["Reason"] != "RefsNotResolved" {
		t.Errorf("row = %v", cells)
	}

	// The short name resolves through discovery, as `kubectl get ap` does.
	list := &metav1.APIResourceList{}
	raw, err = rc.Get().AbsPath("/apis", authgatev1.GroupVersion.Group, authgatev1.GroupVersion.Version).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range list.APIResources {
		if r.Name == "authpolicies" {
			found = slices.Contains(r.ShortNames, "ap") && slices.Contains(r.Categories, "authgate")
		}
	}
	if !found {
		t.Errorf("discovery does not list authpolicies with short name ap and category authgate: %+v", list.APIResources)
	}
}
