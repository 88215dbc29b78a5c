package chart

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/controller"
	"github.com/authgate/authgate/internal/login"
	"github.com/authgate/authgate/internal/webhook"
)

// monitoringValues turn on every monitoring object of the chart.
const monitoringValues = `
metrics:
  serviceMonitor: {enabled: true}
  prometheusRule:
    enabled: true
    labels: {release: prometheus}
    annotations: {owner: platform}
    alertLabels: {team: platform}
    slowCheckSeconds: 0.1
  grafanaDashboard: {enabled: true, annotations: {grafana_folder: Platform}}`

// recordingRegisterer registers on a registry of its own and remembers every collector.
type recordingRegisterer struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var descName = regexp.MustCompile(`fqName: "([^"]+)".*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}`)

// metricLabels returns, for every metric described by the collectors registered through r, its
// label names: const labels first, then variable labels, in their order.
func (r *recordingRegisterer) metricLabels(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, c := range r.collectors {
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the descriptor %s", d)
			}
			var labels []string
			for _, pair := range strings.Split(m[2], ",") {
				if name, _, ok := strings.Cut(pair, "="); ok {
					labels = append(labels, name)
				}
			}
			for _, l := range strings.Split(m[3], ",") {
				if l != "" {
					labels = append(labels, l)
				}
			}
			if prev, ok := out[m[1]]; ok && !slices.Equal(prev, labels) {
				t.Fatalf("%s is described with labels %v and %v", m[1], prev, labels)
			}
			out[m[1]] = labels
		}
	}
	return out
}

// webhookMetrics are the metrics the webhook serves on /metrics, with their labels.
func webhookMetrics(t *testing.T) map[string][]string {
	r := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	webhook.RegisterMetrics(r)
	return r.metricLabels(t)
}

// operatorOwnMetrics are the metrics the operator adds to controller-runtime's.
func operatorOwnMetrics(t *testing.T) map[string][]string {
	r := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	if _, err := controller.NewMetrics(r); err != nil {
		t.Fatal(err)
	}
	return r.metricLabels(t)
}

// operatorRegistered reports whether the operator serves a metric of this name: controller-runtime's
// registry, which the operator's manager serves, holds it. The registry cannot list what it holds,
// so it is asked to register a probe of that name: it refuses one whose name is taken.
func operatorRegistered(t *testing.T, name string) bool {
	t.Helper()
	// The operator's own metrics are registered there as operator.Run registers them, so that
	// the probe never takes their name, even for a moment.
	if _, err := controller.NewMetrics(ctrlmetrics.Registry); err != nil {
		t.Fatal(err)
	}
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "authgate chart test probe",
		ConstLabels: prometheus.Labels{"authgate_chart_test_probe": "1"}})
	err := ctrlmetrics.Registry.Register(probe)
	if err == nil {
		ctrlmetrics.Registry.Unregister(probe)
		return false
	}
	return strings.Contains(err.Error(), "same fully-qualified name")
}

// seriesBase is the metric a series name belongs to: histograms are queried by _bucket, _sum and
// _count.
func seriesBase(name string, known func(string) bool) string {
	if known(name) {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && known(base) {
			return base
		}
	}
	return name
}

// A small PromQL reader: enough to find every selector of the chart's expressions and to refuse
// any metric name written without one (every selector must name its namespace).
var (
	promRange     = regexp.MustCompile(`\[[^\]]*\]`)
	promString    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promSelector  = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}`)
	promMatcher   = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$`)
	promLabelList = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords  = []string{"and", "or", "unless", "bool", "offset", "inf", "nan"}
)

// selector is a metric name with its label matchers.
type selector struct {
	name     string
	matchers map[string]string // label -> value (of =, =~ alike)
}

// selectors returns the selectors of a PromQL expression, and an error for a metric name without a
// selector.
func selectors(expr string) ([]selector, error) {
	var out []selector
	for _, m := range promSelector.FindAllStringSubmatch(expr, -1) {
		s := selector{name: m[1], matchers: map[string]string{}}
		for _, part := range strings.Split(m[2], ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			mm := promMatcher.FindStringSubmatch(part)
			if mm == nil {
				return nil, fmt.Errorf("matcher %q of %s does not parse", part, m[1])
			}
			s.matchers[mm[1]] = mm[3]
		}
		out = append(out, s)
	}
	rest := promSelector.ReplaceAllString(expr, " ")
	rest = promRange.ReplaceAllString(rest, " ")
	rest = promString.ReplaceAllString(rest, " ")
	rest = promLabelList.ReplaceAllString(rest, " ")
	for _, loc := range promIdent.FindAllStringIndex(rest, -1) {
		word := rest[loc[0]:loc[1]]
		if loc[0] > 0 && (rest[loc[0]-1] >= '0' && rest[loc[0]-1] <= '9' || rest[loc[0]-1] == '.') {
			continue // the exponent or unit of a number
		}
		if strings.HasPrefix(strings.TrimLeft(rest[loc[1]:], " \t\n"), "(") || slices.Contains(promKeywords, word) {
			continue // a function, an aggregation, a keyword
		}
		return nil, fmt.Errorf("%q is a metric name without a selector (every selector must name its namespace)", word)
	}
	return out, nil
}

// queryChecker checks the metric names and label values of PromQL expressions against what the
// code registers and names.
type queryChecker struct {
	webhook, operatorOwn map[string][]string
	// jobs are the jobs the chart's ServiceMonitor gives the webhook's and the operator's metrics.
	webhookJob, operatorJob string
	outcomes, loginResults  []string
	// used collects the metrics the expressions use.
	used map[string]bool
}

func newQueryChecker(t *testing.T, r *rendering) *queryChecker {
	q := &queryChecker{
		webhook: webhookMetrics(t), operatorOwn: operatorOwnMetrics(t),
		webhookJob: fullname(r) + "-webhook-metrics", operatorJob: fullname(r) + "-operator-metrics",
		loginResults: []string{string(login.ResultSuccess), string(login.ResultFailure), string(login.ResultRateLimited),
			string(login.ResultInvalidRequest), string(login.ResultError)},
		used: map[string]bool{},
	}
	for o := authz.Outcome(0); o.String() != "unknown"; o++ {
		q.outcomes = append(q.outcomes, o.String())
	}
	return q
}

// check fails for every problem of expr, in where.
func (q *queryChecker) check(t *testing.T, where, expr string) {
	t.Helper()
	sels, err := selectors(expr)
	if err != nil {
		t.Errorf("%s: %v in %s", where, err, expr)
		return
	}
	if len(sels) == 0 {
		t.Errorf("%s: no selector in %s", where, expr)
	}
	for _, s := range sels {
		if _, ok := s.matchers["namespace"]; !ok {
			t.Errorf("%s: %s selects no namespace", where, s.name)
		}
		job, hasJob := s.matchers["job"]
		base := seriesBase(s.name, func(n string) bool { return q.webhook[n] != nil })
		switch {
		case s.name == "up":
			if hasJob && job != q.webhookJob && job != q.operatorJob {
				t.Errorf("%s: up of job %q, which is neither the webhook's %s nor the operator's %s", where, job, q.webhookJob, q.operatorJob)
			}
		case q.webhook[base] != nil:
			q.used[base] = true
			if hasJob && job != q.webhookJob {
				t.Errorf("%s: %s is the webhook's, but job %q is not %s", where, s.name, job, q.webhookJob)
			}
		default:
			base = seriesBase(s.name, func(n string) bool { return operatorRegistered(t, n) })
			if !operatorRegistered(t, base) {
				t.Errorf("%s: %s is registered by neither the webhook nor the operator", where, s.name)
				continue
			}
			q.used[base] = true
			if hasJob && job != q.operatorJob {
				t.Errorf("%s: %s is the operator's, but job %q is not %s", where, s.name, job, q.operatorJob)
			}
		}
		// Label values the code names.
		if v, ok := s.matchers["outcome"]; ok {
			for _, alt := range strings.Split(v, "|") {
				if !slices.Contains(q.outcomes, alt) {
					t.Errorf("%s: outcome %q is not a decision outcome (%v)", where, alt, q.outcomes)
				}
			}
		}
		if v, ok := s.matchers["result"]; ok && base == "authgate_logins_total" {
			for _, alt := range strings.Split(v, "|") {
				if !slices.Contains(q.loginResults, alt) {
					t.Errorf("%s: result %q is not a login result (%v)", where, alt, q.loginResults)
				}
			}
		}
	}
}

// alertRule is a rule of the PrometheusRule.
type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// alertRules returns the rendered PrometheusRule's rules, by group.
func alertRules(t *testing.T, r *rendering) map[string][]alertRule {
	t.Helper()
	rule := r.find("PrometheusRule")[fullname(r)]
	if rule == nil {
		t.Fatalf("no PrometheusRule %s: %s", fullname(r), r.summary())
	}
	groups, _, err := unstructured.NestedSlice(rule.Object, "spec", "groups")
	if err != nil || len(groups) == 0 {
		t.Fatalf("PrometheusRule groups: %v %v", groups, err)
	}
	raw, _ := json.Marshal(groups)
	var gs []struct {
		Name  string      `json:"name"`
		Rules []alertRule `json:"rules"`
	}
	if err := json.Unmarshal(raw, &gs); err != nil {
		t.Fatal(err)
	}
	out := map[string][]alertRule{}
	for _, g := range gs {
		out[g.Name] = g.Rules
	}
	return out
}

// checkMonitoring: the PrometheusRule's alerts and the dashboard's queries use only metrics the
// webhook and the operator register, with the jobs and label values they have.
func checkMonitoring(t *testing.T, r *rendering) {
	q := newQueryChecker(t, r)

	rule := r.find("PrometheusRule")[fullname(r)]
	if rule == nil {
		t.Fatalf("no PrometheusRule: %s", r.summary())
	}
	if rule.GetLabels()["release"] != "prometheus" || rule.GetAnnotations()["owner"] != "platform" {
		t.Errorf("PrometheusRule labels %v, annotations %v: want metrics.prometheusRule's", rule.GetLabels(), rule.GetAnnotations())
	}
	seen := map[string]bool{}
	for group, rules := range alertRules(t, r) {
		for _, a := range rules {
			where := group + "/" + a.Alert
			if a.Alert == "" || seen[a.Alert] {
				t.Errorf("%s: an alert without a name, or twice", where)
			}
			seen[a.Alert] = true
			if a.Labels["severity"] != "critical" && a.Labels["severity"] != "warning" {
				t.Errorf("%s: severity %q", where, a.Labels["severity"])
			}
			if a.Labels["team"] != "platform" {
				t.Errorf("%s: labels %v lack metrics.prometheusRule.alertLabels", where, a.Labels)
			}
			if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", where)
			}
			if a.For != "" {
				if _, err := time.ParseDuration(a.For); err != nil {
					t.Errorf("%s: for %q: %v", where, a.For, err)
				}
			}
			q.check(t, where, a.Expr)
		}
	}
	for _, want := range []string{"AuthgateWebhookDown", "AuthgateCheckErrors", "AuthgateStoreErrors", "AuthgateForbiddenRate",
		"AuthgateSlowChecks", "AuthgateLoginFailures", "AuthgateRefreshTokenReuse", "AuthgateOperatorDown",
		"AuthgateOperatorNoLeader", "AuthgateOperatorStuck"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
	for _, a := range alertRules(t, r)["authgate-webhook"] {
		if a.Alert == "AuthgateSlowChecks" && !strings.Contains(a.Expr, "> 0.1") {
			t.Errorf("AuthgateSlowChecks %q does not use metrics.prometheusRule.slowCheckSeconds", a.Expr)
		}
	}

	var cm corev1.ConfigMap
	r.one(t, "ConfigMap", fullname(r)+"-dashboard", &cm)
	if cm.Labels["grafana_dashboard"] != "1" || cm.Annotations["grafana_folder"] != "Platform" {
		t.Errorf("dashboard ConfigMap labels %v, annotations %v", cm.Labels, cm.Annotations)
	}
	file, err := os.ReadFile(filepath.Join(chartDir(), "dashboards", "authgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["authgate.json"] != strings.TrimSuffix(string(file), "\n") {
		t.Error("the ConfigMap does not hold dashboards/authgate.json as it is")
	}
	var dash struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(file, &dash); err != nil {
		t.Fatalf("dashboards/authgate.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("the dashboard has no uid: every import would make a new copy")
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		query, _ := v.Query.(map[string]any)
		text, _ := query["query"].(string)
		m := labelValues.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("dashboard variable %s: query %q is not label_values(<selector>, <label>)", v.Name, text)
			continue
		}
		// The namespace variable lists namespaces: its selector needs none.
		expr := m[1]
		if !strings.Contains(expr, "{") {
			expr += `{namespace!=""}`
		}
		q.check(t, "dashboard variable "+v.Name, expr)
	}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			q.check(t, "dashboard panel "+p.Title, target.Expr)
		}
	}
	// Every metric of authgate's own is on the dashboard or in an alert.
	for _, names := range []map[string][]string{q.webhook, q.operatorOwn} {
		for name := range names {
			if strings.HasPrefix(name, "authgate_") && !q.used[name] {
				t.Errorf("%s is registered but neither on the dashboard nor in an alert", name)
			}
		}
	}
}

// TestPromQLSelectors: the reader finds selectors and refuses a bare metric name.
func TestPromQLSelectors(t *testing.T) {
	sels, err := selectors(`histogram_quantile(0.99, sum by (le, protocol) (rate(a_bucket{namespace="n", job=~"j|k"}[5m]))) > 0.05 unless on () max(b{namespace="n"}) == 1`)
	if err != nil || len(sels) != 2 || sels[0].name != "a_bucket" || sels[0].matchers["job"] != "j|k" || sels[1].name != "b" {
		t.Errorf("selectors = %+v, %v", sels, err)
	}
	if _, err := selectors(`sum(rate(authgate_decisions_total[5m]))`); err == nil || !strings.Contains(err.Error(), "authgate_decisions_total") {
		t.Errorf("a bare metric name: %v", err)
	}
}

// TestMonitoringDocumented: docs/operations.md lists every metric of authgate's own with its labels,
// and names every alert of the chart's PrometheusRule.
func TestMonitoringDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(), "..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, names := range []map[string][]string{webhookMetrics(t), operatorOwnMetrics(t)} {
		for name, labels := range names {
			if !strings.HasPrefix(name, "authgate_") {
				continue
			}
			want := "`" + name + "{" + strings.Join(labels, ",") + "}`"
			if len(labels) == 0 {
				want = "`" + name + "`"
			}
			if !strings.Contains(doc, want) {
				t.Errorf("docs/operations.md does not list %s", want)
			}
		}
	}
	r := mustRender(t, "authgate", monitoringValues)
	for _, rules := range alertRules(t, r) {
		for _, a := range rules {
			if !strings.Contains(doc, "`"+a.Alert+"`") {
				t.Errorf("docs/operations.md does not name the alert `%s`", a.Alert)
			}
		}
	}
}
