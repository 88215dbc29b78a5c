package chart

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// chartDir is charts/authgate, found from this file so that the tests run from any folder.
func chartDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "authgate")
}

// rendering is what `helm install` would send to the API server for one set of values.
type rendering struct {
	namespace string
	values    map[string]any
	files     map[string]string // template path → rendered text
	objects   []*unstructured.Unstructured
	notes     string
}

// parseValues reads a values YAML document (empty: the chart's defaults only).
func parseValues(t testing.TB, valuesYAML string) map[string]any {
	t.Helper()
	values := map[string]any{}
	if err := yaml.Unmarshal([]byte(valuesYAML), &values); err != nil {
		t.Fatalf("the test's values do not parse: %v", err)
	}
	return values
}

// render renders the chart as release "authgate" in namespace with the given values, the way
// `helm install` does: the values are merged over values.yaml, checked against values.schema.json,
// and every template is executed. The error is the one helm would print.
func render(t testing.TB, namespace, valuesYAML string) (*rendering, error) {
	t.Helper()
	return renderWith(t, namespace, valuesYAML, nil)
}

// renderWith renders like render, and with upgrade set it renders a `helm upgrade` whose lookup
// function reads the cluster behind upgrade.
func renderWith(t testing.TB, namespace, valuesYAML string, upgrade *rest.Config) (*rendering, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir())
	if err != nil {
		t.Fatalf("loading the chart: %v", err)
	}
	values := parseValues(t, valuesYAML)
	caps := chartutil.DefaultCapabilities.Copy()
	caps.APIVersions = append(caps.APIVersions, "monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor",
		"monitoring.coreos.com/v1/PrometheusRule")
	opts := chartutil.ReleaseOptions{Name: "authgate", Namespace: namespace, Revision: 1, IsInstall: true}
	if upgrade != nil {
		opts = chartutil.ReleaseOptions{Name: "authgate", Namespace: namespace, Revision: 2, IsUpgrade: true}
	}
	top, err := chartutil.ToRenderValues(chrt, values, opts, caps)
	if err != nil {
		return nil, err
	}
	var files map[string]string
	if upgrade != nil {
		files, err = engine.RenderWithClient(chrt, top, upgrade)
	} else {
		files, err = engine.Render(chrt, top)
	}
	if err != nil {
		return nil, err
	}
	r := &rendering{namespace: namespace, values: values, files: files}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		text := files[name]
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			r.notes = text
			continue
		case strings.HasPrefix(filepath.Base(name), "_"):
			continue
		}
		objs, err := decode(text)
		if err != nil {
			t.Fatalf("%s does not decode: %v\n%s", name, err, text)
		}
		r.objects = append(r.objects, objs...)
	}
	return r, nil
}

// mustRender renders values that must be accepted.
func mustRender(t testing.TB, namespace, valuesYAML string) *rendering {
	t.Helper()
	r, err := render(t, namespace, valuesYAML)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return r
}

// decode splits a rendered file into its objects, skipping empty documents (comments only).
func decode(text string) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil, errors.New("a document without apiVersion, kind or name:\n" + string(bytes.TrimSpace(doc)))
		}
		objs = append(objs, u)
	}
}

// find returns the rendered objects of a kind, by name.
func (r *rendering) find(kind string) map[string]*unstructured.Unstructured {
	found := map[string]*unstructured.Unstructured{}
	for _, o := range r.objects {
		if o.GetKind() == kind {
			found[o.GetName()] = o
		}
	}
	return found
}

// one returns the object of kind and name, failing the test when it was not rendered.
func (r *rendering) one(t testing.TB, kind, name string, into any) {
	t.Helper()
	o, ok := r.find(kind)[name]
	if !ok {
		t.Fatalf("no %s %s rendered; have %s", kind, name, r.summary())
	}
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

// has reports whether an object of kind and name was rendered.
func (r *rendering) has(kind, name string) bool {
	_, ok := r.find(kind)[name]
	return ok
}

func (r *rendering) summary() string {
	var s []string
	for _, o := range r.objects {
		s = append(s, o.GetKind()+"/"+o.GetName())
	}
	return strings.Join(s, ", ")
}

// workloads are the rendered Deployments and StatefulSets as pod templates, by object name.
func (r *rendering) workloads(t testing.TB) map[string]corev1.PodTemplateSpec {
	t.Helper()
	pods := map[string]corev1.PodTemplateSpec{}
	for name := range r.find("Deployment") {
		var d appsv1.Deployment
		r.one(t, "Deployment", name, &d)
		pods[name] = d.Spec.Template
	}
	for name := range r.find("StatefulSet") {
		var s appsv1.StatefulSet
		r.one(t, "StatefulSet", name, &s)
		// The StatefulSet controller adds a volume for each claim template to the pods it creates.
		for _, claim := range s.Spec.VolumeClaimTemplates {
			s.Spec.Template.Spec.Volumes = append(s.Spec.Template.Spec.Volumes, corev1.Volume{Name: claim.Name,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name + "-" + name + "-0"}}})
		}
		pods[name] = s.Spec.Template
	}
	return pods
}

// container returns the named container of a pod template.
func container(t testing.TB, pod corev1.PodTemplateSpec, name string) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no container %q in the pod template", name)
	}
	return pod.Spec.Containers[i]
}

// flagValue returns the value of --name=value in args, and whether it is there.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "true", true
		}
	}
	return "", false
}
