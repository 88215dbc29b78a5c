package chart

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/internal/operator"
	"github.com/authgate/authgate/internal/testenv"
	"github.com/authgate/authgate/internal/webhook"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, &env, installMonitoringCRDs))
}

// chartCase is one set of values of the matrix, with what must hold of its rendering beyond the
// checks every rendering gets.
type chartCase struct {
	name   string
	values string
	check  func(t *testing.T, r *rendering)
}

var matrix = []chartCase{
	{name: "defaults", check: checkDefaults},
	{name: "memory store, one replica", values: `
webhook: {store: memory, replicas: 1}`, check: func(t *testing.T, r *rendering) {
		if r.has("StatefulSet", "authgate-redis") || r.has("PodDisruptionBudget", "authgate-webhook") {
			t.Errorf("one replica on memory renders a Redis or a PDB (a PDB of minAvailable 1 would block every drain): %s", r.summary())
		}
		args := webhookContainer(t, r).Args
		if v, _ := flagValue(args, "store"); v != "memory" || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--redis-") }) {
			t.Errorf("webhook args %q: want --store=memory and no Redis flags", args)
		}
	}},
	{name: "standalone Redis with TLS and a password", values: `
redis:
  bundled: {enabled: false}
  url: rediss://redis.example.com:6380/2
  username: authgate
  password: {existingSecret: redis-auth, key: pw}
  tls:
    enabled: true
    caSecret: {name: redis-ca}
    clientCertSecret: redis-client`, check: func(t *testing.T, r *rendering) {
		c := webhookContainer(t, r)
		wantFlags(t, c.Args, map[string]string{"redis-url": "rediss://redis.example.com:6380/2", "redis-username": "authgate",
			"redis-tls": "true", "redis-ca-file": "/etc/authgate/redis-ca/ca.crt", "redis-cert-file": "/etc/authgate/redis-client/tls.crt"})
		wantSecretEnv(t, c, "AUTHGATE_REDIS_PASSWORD", "redis-auth", "pw")
		if r.has("StatefulSet", "authgate-redis") {
			t.Error("the bundled Redis is rendered although it is off")
		}
	}},
	{name: "Redis Sentinel", values: `
redis:
  bundled: {enabled: false}
  mode: sentinel
  addrs: [sentinel-0.redis:26379, sentinel-1.redis:26379, sentinel-2.redis:26379]
  sentinelMaster: mymaster
  db: 3
  password: {existingSecret: redis-auth}
  sentinelPassword: {existingSecret: redis-auth}`, check: func(t *testing.T, r *rendering) {
		c := webhookContainer(t, r)
		wantFlags(t, c.Args, map[string]string{"redis-addrs": "sentinel-0.redis:26379,sentinel-1.redis:26379,sentinel-2.redis:26379",
			"redis-sentinel-master": "mymaster", "redis-db": "3"})
		wantSecretEnv(t, c, "AUTHGATE_REDIS_PASSWORD", "redis-auth", "password")
		wantSecretEnv(t, c, "AUTHGATE_REDIS_SENTINEL_PASSWORD", "redis-auth", "sentinel-password")
	}},
	{name: "Redis Cluster through one endpoint", values: `
redis:
  bundled: {enabled: false}
  mode: cluster
  addrs: [clustercfg.sessions.example.com:6379]
  tls: {enabled: true}
  password: {existingSecret: redis-auth}`, check: func(t *testing.T, r *rendering) {
		wantFlags(t, webhookContainer(t, r).Args, map[string]string{"redis-addrs": "clustercfg.sessions.example.com:6379",
			"redis-cluster": "true", "redis-tls": "true"})
	}},
	{name: "autoscaling", values: `
webhook: {autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 12, targetCPUUtilizationPercentage: 60}}`,
		check: func(t *testing.T, r *rendering) {
			var d appsv1.Deployment
			r.one(t, "Deployment", "authgate-webhook", &d)
			if d.Spec.Replicas != nil {
				t.Errorf("the Deployment sets replicas %d, which would fight the autoscaler", *d.Spec.Replicas)
			}
			var hpa autoscalingv2.HorizontalPodAutoscaler
			r.one(t, "HorizontalPodAutoscaler", "authgate-webhook", &hpa)
			if hpa.Spec.ScaleTargetRef.Name != "authgate-webhook" || hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 ||
				hpa.Spec.MaxReplicas != 12 || len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil ||
				*hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 {
				t.Errorf("HPA %+v", hpa.Spec)
			}
			if !r.has("PodDisruptionBudget", "authgate-webhook") {
				t.Error("no PodDisruptionBudget with autoscaling")
			}
		}},
	{name: "ServiceMonitor", values: `
metrics: {serviceMonitor: {enabled: true, interval: 15s, labels: {release: prometheus}}}`, check: checkServiceMonitor},
	{name: "alert rules and dashboard", values: monitoringValues, check: checkMonitoring},
	{name: "CRDs off", values: `
crds: {enabled: false}`, check: func(t *testing.T, r *rendering) {
		if len(r.find("CustomResourceDefinition")) != 0 {
			t.Error("crds.enabled=false still renders a CRD")
		}
	}},
	{name: "CRDs not kept", values: `
crds: {keep: false}`, check: func(t *testing.T, r *rendering) {
		crd := r.find("CustomResourceDefinition")["authpolicies.authgate.dev"]
		if crd == nil {
			t.Fatal("no AuthPolicy CRD")
		}
		if _, ok := crd.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Error("crds.keep=false still sets helm.sh/resource-policy")
		}
	}},
	{name: "login Ingress, cert-manager, NetworkPolicy, gRPC TLS", values: `
ingress:
  enabled: true
  className: nginx
  host: auth.example.com
  annotations: {nginx.ingress.kubernetes.io/proxy-body-size: 64k}
  tls: {certManager: {clusterIssuer: letsencrypt}}
networkPolicy:
  enabled: true
  checksFrom:
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}
webhook:
  grpc: {tls: {enabled: true, secretName: authgate-grpc-tls}}`, check: checkIngressAndFriends},
	{name: "fullnameOverride and extras", values: `
fullnameOverride: gate
commonLabels: {team: platform}
imagePullSecrets: [{name: regcred}]
webhook:
  image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
  extraArgs: ["--cache-size=5000"]
  extraEnv: [{name: GOMEMLIMIT, value: 400MiB}]
  priorityClassName: system-cluster-critical
  grpc: {enabled: false}
operator:
  loginURL: https://login.example.com/auth/login
  leaderElection: {enabled: false}`, check: func(t *testing.T, r *rendering) {
		for _, o := range r.objects {
			if o.GetLabels()["team"] != "platform" {
				t.Errorf("%s %s lacks the common label", o.GetKind(), o.GetName())
			}
			if o.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(o.GetName(), "gate") {
				t.Errorf("%s %s does not start with the fullnameOverride", o.GetKind(), o.GetName())
			}
		}
		var d appsv1.Deployment
		r.one(t, "Deployment", "gate-webhook", &d)
		c := container(t, d.Spec.Template, "webhook")
		if !strings.HasSuffix(c.Image, "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
			t.Errorf("image %q is not pinned by the digest", c.Image)
		}
		if v, _ := flagValue(c.Args, "grpc-addr"); v != "" || slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "grpc" }) {
			t.Errorf("gRPC is off but the webhook listens on %q or declares a grpc port", v)
		}
		if r.has("Service", "gate-webhook-grpc") {
			t.Error("gRPC is off but its headless Service is rendered")
		}
		var o appsv1.Deployment
		r.one(t, "Deployment", "gate-operator", &o)
		wantFlags(t, container(t, o.Spec.Template, "operator").Args, map[string]string{
			"login-url": "https://login.example.com/auth/login", "leader-elect": "false"})
		if r.has("Role", "gate-operator-leader-election") {
			t.Error("leader election is off but its Role is rendered")
		}
	}},
}

// TestChartMatrix renders every case, checks the objects in Go, and has the real API server
// validate each of them with a server-side dry-run apply, CRDs first.
func TestChartMatrix(t *testing.T) {
	for _, tc := range matrix {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := restrictedNamespace(t)
			r := mustRender(t, ns, tc.values)
			checkEveryRendering(t, r)
			if tc.check != nil {
				tc.check(t, r)
			}
			applyDryRun(t, r)
			podsAdmitted(t, r)
		})
	}
}

// TestChartLint runs helm's linter on the chart with every case's values: no warning, no error.
func TestChartLint(t *testing.T) {
	kubeVersion, err := chartutil.ParseKubeVersion("v1.37.0")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range matrix {
		linter := lint.AllWithKubeVersion(chartDir(), parseValues(t, tc.values), "authgate", kubeVersion)
		for _, msg := range linter.Messages {
			if msg.Severity >= support.WarningSev {
				t.Errorf("%s: helm lint: %s", tc.name, msg)
			}
		}
	}
}

// restrictedNamespace creates a namespace where Pod Security "restricted" is enforced and warned
// about, so that the API server itself judges the chart's pods.
func restrictedNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "chart-", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// warnings collects the API server's warnings (Pod Security, deprecated APIs, unknown fields).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

// strictClient is a client that fails on unknown or duplicate fields and records warnings.
func strictClient(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return client.WithFieldValidation(c, metav1.FieldValidationStrict), w
}

// applyDryRun applies every object with server-side apply and dryRun=All, CRDs first: the API
// server validates each against its schema (and the CRD's, for a ServiceMonitor) and runs
// admission, Pod Security included, persisting nothing. Any warning fails the test.
func applyDryRun(t *testing.T, r *rendering) {
	t.Helper()
	c, w := strictClient(t)
	objs := slices.Clone(r.objects)
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		return boolRank(a.GetKind() != "CustomResourceDefinition") - boolRank(b.GetKind() != "CustomResourceDefinition")
	})
	for _, o := range objs {
		err := c.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner("helm"), client.ForceOwnership, client.DryRunAll)
		if err != nil {
			t.Errorf("the API server refuses %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		for _, warning := range w.take() {
			t.Errorf("the API server warns about %s %s: %s", o.GetKind(), o.GetName(), warning)
		}
	}
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// podsAdmitted creates (dry-run) a pod from every pod template in the restricted namespace: Pod
// Security admission rejects any that the "restricted" profile forbids.
func podsAdmitted(t *testing.T, r *rendering) {
	t.Helper()
	c, w := strictClient(t)
	for name, tmpl := range r.workloads(t) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-pod", Namespace: r.namespace, Labels: tmpl.Labels}, Spec: tmpl.Spec}
		if err := c.Create(context.Background(), pod, client.DryRunAll); err != nil {
			t.Errorf("a pod of %s is not admitted: %v", name, err)
		}
		for _, warning := range w.take() {
			t.Errorf("a pod of %s draws a warning: %s", name, warning)
		}
	}
}

// TestRestrictedNamespaceRejects proves the namespace of the matrix enforces Pod Security: a pod
// that may escalate privileges is refused there, so the matrix's admitted pods mean something.
func TestRestrictedNamespaceRejects(t *testing.T) {
	ns := restrictedNamespace(t)
	c, _ := strictClient(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lax", Namespace: ns}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "example.com/lax:1"}},
	}}
	err := c.Create(context.Background(), pod, client.DryRunAll)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Fatalf("a pod without a security context: %v, want a PodSecurity refusal", err)
	}
}

// checkEveryRendering holds for every set of values.
func checkEveryRendering(t *testing.T, r *rendering) {
	t.Helper()
	for _, o := range r.objects {
		labels := o.GetLabels()
		if labels["app.kubernetes.io/instance"] != "authgate" || labels["app.kubernetes.io/part-of"] != "authgate" {
			t.Errorf("%s %s lacks the chart's labels: %v", o.GetKind(), o.GetName(), labels)
		}
		if ns := o.GetNamespace(); ns != "" && ns != r.namespace {
			t.Errorf("%s %s is in namespace %q, not the release's", o.GetKind(), o.GetName(), ns)
		}
	}
	for name, pod := range r.workloads(t) {
		checkSecurityContext(t, name, pod)
		checkMounts(t, name, pod)
	}
	checkWebhook(t, r)
	checkOperator(t, r)
	checkRBAC(t, r)
	if !strings.Contains(r.notes, "kubectl annotate ingress") {
		t.Errorf("NOTES.txt does not tell the next steps:\n%s", r.notes)
	}
}

// checkSecurityContext asserts the restricted Pod Security profile explicitly, container by
// container, so the chart does not lean on a cluster's defaults.
func checkSecurityContext(t *testing.T, name string, pod corev1.PodTemplateSpec) {
	t.Helper()
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context %+v: want non-root, a non-zero user and seccomp RuntimeDefault", name, psc)
	}
	if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
		t.Errorf("%s: shares a host namespace", name)
	}
	for _, c := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s/%s: no security context", name, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s/%s: privilege escalation allowed", name, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s/%s: root filesystem writable", name, c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s/%s: privileged", name, c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s/%s: capabilities %+v, want all dropped and none added", name, c.Name, sc.Capabilities)
		case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
			t.Errorf("%s/%s: seccomp %+v", name, c.Name, sc.SeccompProfile)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: resources %+v: want CPU and memory requests and a memory limit", name, c.Name, c.Resources)
		}
	}
}

// checkMounts asserts that every file a flag names lies in a mounted volume, and that a Secret
// volume limited to some keys holds the file's key.
func checkMounts(t *testing.T, name string, pod corev1.PodTemplateSpec) {
	t.Helper()
	for _, c := range pod.Spec.Containers {
		for _, a := range c.Args {
			_, value, ok := strings.Cut(a, "=")
			if !ok || !strings.HasPrefix(value, "/") {
				continue
			}
			i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return strings.HasPrefix(value, m.MountPath+"/") })
			if i < 0 {
				t.Errorf("%s/%s: %s names a file outside every volume mount", name, c.Name, a)
				continue
			}
			m := c.VolumeMounts[i]
			v := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
			if v < 0 {
				t.Errorf("%s/%s: mount %s has no volume", name, c.Name, m.Name)
				continue
			}
			if s := pod.Spec.Volumes[v].Secret; s != nil && len(s.Items) > 0 {
				file := strings.TrimPrefix(value, m.MountPath+"/")
				if !slices.ContainsFunc(s.Items, func(k corev1.KeyToPath) bool { return k.Path == file }) {
					t.Errorf("%s/%s: %s: Secret %s mounts no %s", name, c.Name, a, s.SecretName, file)
				}
			}
		}
	}
}

func webhookContainer(t *testing.T, r *rendering) corev1.Container {
	t.Helper()
	var d appsv1.Deployment
	r.one(t, "Deployment", fullname(r)+"-webhook", &d)
	return container(t, d.Spec.Template, "webhook")
}

func fullname(r *rendering) string {
	if f, ok := r.values["fullnameOverride"].(string); ok && f != "" {
		return f
	}
	return "authgate"
}

// checkWebhook: probes on the port the webhook serves, flags the real command accepts, and a
// Service that reaches the ports.
func checkWebhook(t *testing.T, r *rendering) {
	t.Helper()
	c := webhookContainer(t, r)
	httpAddr, _ := flagValue(c.Args, "http-addr")
	port := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" })
	if port < 0 || ":"+strconv.Itoa(int(c.Ports[port].ContainerPort)) != httpAddr {
		t.Fatalf("webhook serves HTTP on %q but declares ports %+v", httpAddr, c.Ports)
	}
	for probe, want := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if want == nil || want.HTTPGet == nil || want.HTTPGet.Path != probe || want.HTTPGet.Port.String() != "http" {
			t.Errorf("webhook probe for %s: %+v", probe, want)
		}
	}
	if c.StartupProbe == nil || c.StartupProbe.HTTPGet == nil || c.StartupProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("webhook startup probe %+v: want /readyz (the first snapshot can take a while)", c.StartupProbe)
	}
	args := localPaths(t, c.Args)
	if _, err := webhook.ParseFlags(args, io.Discard); err != nil {
		t.Errorf("the webhook refuses the chart's flags %q: %v", c.Args, err)
	}
	var svc corev1.Service
	r.one(t, "Service", fullname(r)+"-webhook", &svc)
	for _, p := range svc.Spec.Ports {
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.String() }) {
			t.Errorf("Service port %s targets %s, which the webhook does not declare", p.Name, p.TargetPort.String())
		}
	}
}

// checkOperator: the operator's flags parse, and --webhook-url names the webhook Service's
// fully qualified name and HTTP port.
func checkOperator(t *testing.T, r *rendering) {
	t.Helper()
	var d appsv1.Deployment
	r.one(t, "Deployment", fullname(r)+"-operator", &d)
	c := container(t, d.Spec.Template, "operator")
	if _, err := operator.ParseFlags(c.Args, io.Discard); err != nil {
		t.Errorf("the operator refuses the chart's flags %q: %v", c.Args, err)
	}
	for probe, want := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if want == nil || want.HTTPGet == nil || want.HTTPGet.Path != probe || want.HTTPGet.Port.String() != "health" {
			t.Errorf("operator probe for %s: %+v", probe, want)
		}
	}
	raw, _ := flagValue(c.Args, "webhook-url")
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("--webhook-url %q: %v", raw, err)
	}
	var svc corev1.Service
	r.one(t, "Service", fullname(r)+"-webhook", &svc)
	wantHost := fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, r.namespace)
	if u.Hostname() != wantHost || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
		return p.Name == "http" && strconv.Itoa(int(p.Port)) == u.Port()
	}) {
		t.Errorf("--webhook-url %s does not reach the Service %s (%+v); nginx needs the fully qualified name", raw, wantHost, svc.Spec.Ports)
	}
}

// checkDefaults: what a plain `helm install` gives.
func checkDefaults(t *testing.T, r *rendering) {
	var d appsv1.Deployment
	r.one(t, "Deployment", "authgate-webhook", &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("webhook replicas %v, want 2", d.Spec.Replicas)
	}
	if len(d.Spec.Template.Spec.TopologySpreadConstraints) != 2 {
		t.Errorf("topology spread %+v: want nodes and zones", d.Spec.Template.Spec.TopologySpreadConstraints)
	}
	if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: a rollout must not take a replica away before its successor is ready", s)
	}
	c := container(t, d.Spec.Template, "webhook")
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Errorf("webhook preStop %+v: want a sleep, so that proxies stop sending checks before it exits", c.Lifecycle)
	}
	if _, ok := flagValue(c.Args, "trust-forwarded-for"); ok {
		t.Error("--trust-forwarded-for without an Ingress in front of the login page")
	}
	if !r.has("PodDisruptionBudget", "authgate-webhook") || r.has("HorizontalPodAutoscaler", "authgate-webhook") ||
		r.has("ServiceMonitor", "authgate") || r.has("PrometheusRule", "authgate") || r.has("ConfigMap", "authgate-dashboard") ||
		r.has("Ingress", "authgate-login") || len(r.find("NetworkPolicy")) > 0 {
		t.Errorf("default objects: %s", r.summary())
	}
	crd := r.find("CustomResourceDefinition")["authpolicies.authgate.dev"]
	if crd == nil || crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the AuthPolicy CRD is missing or not kept on uninstall")
	}
	// The bundled Redis: the webhook uses its Service and the password its server requires.
	var secret corev1.Secret
	r.one(t, "Secret", "authgate-redis", &secret)
	password := secret.StringData["password"]
	if len(password) < 32 || !strings.Contains(secret.StringData["redis.conf"], "\nrequirepass "+password+"\n") ||
		!strings.Contains(secret.StringData["redis.conf"], "appendonly yes") {
		t.Errorf("bundled Redis Secret: password of %d characters, redis.conf:\n%s", len(password), secret.StringData["redis.conf"])
	}
	wantFlags(t, c.Args, map[string]string{"store": "redis",
		"redis-addrs": "authgate-redis." + r.namespace + ".svc.cluster.local:6379"})
	wantSecretEnv(t, c, "AUTHGATE_REDIS_PASSWORD", "authgate-redis", "password")
	var key corev1.Secret
	r.one(t, "Secret", "authgate-webhook-key", &key)
	if len(key.Data["secret-key"]) < 32 {
		t.Errorf("the webhook's shared key holds %d bytes, want at least 32", len(key.Data["secret-key"]))
	}
	var sts appsv1.StatefulSet
	r.one(t, "StatefulSet", "authgate-redis", &sts)
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Error("the bundled Redis keeps its data on no PersistentVolumeClaim")
	}
	// Without an Ingress there is no default login page.
	var o appsv1.Deployment
	r.one(t, "Deployment", "authgate-operator", &o)
	if v, ok := flagValue(container(t, o.Spec.Template, "operator").Args, "login-url"); ok {
		t.Errorf("--login-url=%s without an Ingress or operator.loginURL", v)
	}
}

func checkServiceMonitor(t *testing.T, r *rendering) {
	sm := r.find("ServiceMonitor")["authgate"]
	if sm == nil {
		t.Fatalf("no ServiceMonitor: %s", r.summary())
	}
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack metrics.serviceMonitor.labels", sm.GetLabels())
	}
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	var selected []string
	for name, svc := range r.find("Service") {
		if matches(svc.GetLabels(), selector) {
			selected = append(selected, name)
			ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
			if !slices.ContainsFunc(ports, func(p any) bool { return p.(map[string]any)["name"] == "metrics" }) {
				t.Errorf("Service %s is selected but has no metrics port", name)
			}
		}
	}
	slices.Sort(selected)
	if !slices.Equal(selected, []string{"authgate-operator-metrics", "authgate-webhook-metrics"}) {
		t.Errorf("the ServiceMonitor selects %v, want the webhook's and the operator's metrics Services", selected)
	}
}

func checkIngressAndFriends(t *testing.T, r *rendering) {
	var ing networkingv1.Ingress
	r.one(t, "Ingress", "authgate-login", &ing)
	if ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" || ing.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"] != "64k" {
		t.Errorf("Ingress annotations %v", ing.Annotations)
	}
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" || len(ing.Spec.TLS) != 1 ||
		ing.Spec.TLS[0].SecretName != "authgate-login-tls" || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{"auth.example.com"}) {
		t.Errorf("Ingress class or TLS: %+v %+v", ing.Spec.IngressClassName, ing.Spec.TLS)
	}
	var paths []string
	for _, rule := range ing.Spec.Rules {
		for _, p := range rule.HTTP.Paths {
			paths = append(paths, rule.Host+p.Path)
			if p.Backend.Service == nil || p.Backend.Service.Name != "authgate-webhook" || p.Backend.Service.Port.Name != "http" {
				t.Errorf("path %s goes to %+v", p.Path, p.Backend)
			}
		}
	}
	if !slices.Equal(paths, []string{"auth.example.com/auth/", "auth.example.com/.well-known/"}) {
		t.Errorf("Ingress paths %v", paths)
	}
	c := webhookContainer(t, r)
	wantFlags(t, c.Args, map[string]string{"trust-forwarded-for": "true",
		"grpc-tls-cert-file": "/etc/authgate/grpc-tls/tls.crt", "grpc-tls-key-file": "/etc/authgate/grpc-tls/tls.key"})
	var o appsv1.Deployment
	r.one(t, "Deployment", "authgate-operator", &o)
	wantFlags(t, container(t, o.Spec.Template, "operator").Args, map[string]string{"login-url": "https://auth.example.com/auth/login"})

	var np networkingv1.NetworkPolicy
	r.one(t, "NetworkPolicy", "authgate-webhook", &np)
	if len(np.Spec.Ingress) != 2 || len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].NamespaceSelector == nil ||
		np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "ingress-nginx" {
		t.Errorf("webhook NetworkPolicy %+v", np.Spec.Ingress)
	}
	var redisNP networkingv1.NetworkPolicy
	r.one(t, "NetworkPolicy", "authgate-redis", &redisNP)
	if len(redisNP.Spec.Ingress) != 1 || redisNP.Spec.Ingress[0].From[0].PodSelector == nil ||
		redisNP.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "webhook" {
		t.Errorf("the bundled Redis admits %+v, want the webhook only", redisNP.Spec.Ingress)
	}
}

func matches(labels, selector map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// wantFlags fails for each flag of want that args lack or set otherwise.
func wantFlags(t *testing.T, args []string, want map[string]string) {
	t.Helper()
	for name, value := range want {
		if got, ok := flagValue(args, name); !ok || got != value {
			t.Errorf("--%s=%q (present: %t), want %q; args %q", name, got, ok, value, args)
		}
	}
}

// wantSecretEnv fails unless the container takes variable from key of Secret secret.
func wantSecretEnv(t *testing.T, c corev1.Container, variable, secret, key string) {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == variable })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.SecretKeyRef == nil ||
		c.Env[i].ValueFrom.SecretKeyRef.Name != secret || c.Env[i].ValueFrom.SecretKeyRef.Key != key {
		t.Errorf("%s: %+v, want Secret %s key %s", variable, c.Env, secret, key)
	}
}

// checkRBAC: the chart's roles grant exactly the rules controller-gen generated from the RBAC
// markers (config/rbac), no wildcard, and are bound to the ServiceAccounts the pods run as.
func checkRBAC(t *testing.T, r *rendering) {
	t.Helper()
	full := fullname(r)
	for _, tc := range []struct {
		kind, name, file, scope string
	}{
		{"ClusterRole", full + "-webhook", "webhook/role.yaml", "ClusterRole"},
		{"ClusterRole", full + "-operator", "operator/role.yaml", "ClusterRole"},
		{"Role", full + "-operator-leader-election", "operator/role.yaml", "Role"},
	} {
		if !r.has(tc.kind, tc.name) {
			if tc.kind == "Role" && valueAt(r.values, "operator", "leaderElection", "enabled") == false {
				continue
			}
			t.Errorf("no %s %s", tc.kind, tc.name)
			continue
		}
		var got rbacv1.ClusterRole // a Role's rules have the same shape
		r.one(t, tc.kind, tc.name, &got)
		want := generatedRules(t, tc.file, tc.scope)
		gotYAML, _ := yaml.Marshal(got.Rules)
		wantYAML, _ := yaml.Marshal(want)
		if string(gotYAML) != string(wantYAML) {
			t.Errorf("%s %s grants\n%s\nbut the markers generate\n%s", tc.kind, tc.name, gotYAML, wantYAML)
		}
		for _, rule := range got.Rules {
			if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
				t.Errorf("%s %s: wildcard rule %+v", tc.kind, tc.name, rule)
			}
			if strings.HasSuffix(tc.name, "-webhook") && slices.ContainsFunc(rule.Verbs, func(v string) bool { return !slices.Contains([]string{"get", "list", "watch"}, v) }) {
				t.Errorf("the webhook may %v %v: it only reads", rule.Verbs, rule.Resources)
			}
			if slices.Contains(rule.Verbs, "delete") || slices.Contains(rule.Verbs, "deletecollection") || slices.Contains(rule.Verbs, "escalate") ||
				slices.Contains(rule.Verbs, "bind") || slices.Contains(rule.Verbs, "impersonate") {
				t.Errorf("%s %s may %v", tc.kind, tc.name, rule.Verbs)
			}
		}
	}
	sas := map[string]string{}
	for name, pod := range r.workloads(t) {
		sas[name] = pod.Spec.ServiceAccountName
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for name := range r.find(kind) {
			var b rbacv1.RoleBinding
			r.one(t, kind, name, &b)
			component := full + "-" + strings.Split(strings.TrimPrefix(name, full+"-"), "-")[0]
			if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sas[component] ||
				b.Subjects[0].Namespace != r.namespace || b.RoleRef.Name != name {
				t.Errorf("%s %s binds %+v to %+v; the pods of %s run as %q", kind, name, b.RoleRef, b.Subjects, component, sas[component])
			}
		}
	}
}

// generatedRules reads the rules of the ClusterRole or Role in config/rbac/<file>.
func generatedRules(t *testing.T, file, kind string) []rbacv1.PolicyRule {
	t.Helper()
	raw, err := os.ReadFile(testenv.RoleFile(file))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var role struct {
			Kind  string              `json:"kind"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind == kind {
			return role.Rules
		}
	}
	t.Fatalf("no %s in %s", kind, file)
	return nil
}

// localPaths rewrites the files the chart mounts under /etc/authgate/ into a temporary folder
// holding files of the same kind (PEM certificates, keys, a shared key), so that the webhook's own
// flag checks, which read them, run as they would in the pod.
func localPaths(t *testing.T, args []string) []string {
	t.Helper()
	dir := t.TempDir()
	out := make([]string, len(args))
	for i, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(value, "/etc/authgate/") {
			out[i] = a
			continue
		}
		local := dir + "/" + strings.ReplaceAll(strings.TrimPrefix(value, "/etc/authgate/"), "/", "_")
		writeMountedFile(t, local, path.Base(value))
		out[i] = name + "=" + local
	}
	return out
}
