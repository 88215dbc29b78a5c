package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	authgatev1 "github.com/authgate/authgate/api/v1"
)

const (
	realCRD    = "../../config/crd/bases/authgate.dev_authpolicies.yaml"
	realHeader = "header.md"
)

// schema parses a JSONSchemaProps from YAML, so that test schemas read like the CRD.
func schema(t *testing.T, src string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	s := &apiextensionsv1.JSONSchemaProps{}
	if err := yaml.UnmarshalStrict([]byte(src), s); err != nil {
		t.Fatalf("test schema does not parse: %v\n%s", err, src)
	}
	return s
}

func TestFieldRows(t *testing.T) {
	cases := map[string]struct {
		schema string
		want   []string // lines of the output, exactly
	}{
		"enum with default": {
			schema: `
type: object
properties:
  spec:
    type: object
    required: [mode]
    properties:
      mode:
        type: string
        description: how a request proves who it is.
        enum: [Session, JWT, Either, Public]
        default: Session
`,
			want: []string{
				"| `spec.mode` | string | `\"Session\"` | yes | one of: `Session`, `JWT`, `Either`, `Public` | how a request proves who it is. |",
			},
		},
		"pattern and lengths": {
			schema: `
type: object
properties:
  name:
    type: string
    minLength: 1
    maxLength: 63
    pattern: ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$
`,
			want: []string{
				"| `name` | string |  |  | 1 to 63 characters<br>pattern: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$` |  |",
			},
		},
		"defaults are JSON": {
			schema: `
type: object
properties:
  cookie:
    type: object
    default: {}
    properties:
      secure: {type: boolean, default: true}
      ttl: {type: string, default: 168h}
      port: {type: integer, format: int32, default: 8080, minimum: 1, maximum: 65535}
`,
			want: []string{
				"| `cookie` | [object](#cookie) | `{}` |  |  |  |",
				"| `cookie.port` | integer (int32) | `8080` |  | at least 1<br>at most 65535 |  |",
				"| `cookie.secure` | boolean | `true` |  |  |  |",
				"| `cookie.ttl` | string | `\"168h\"` |  |  |  |",
			},
		},
		"CEL rules on a field: message preferred, else the rule": {
			schema: `
type: object
properties:
  ttl:
    type: string
    maxLength: 32
    x-kubernetes-validations:
    - rule: duration(self) > duration('0s')
      message: ttl must be greater than zero
    - rule: self != 'x|y'
`,
			want: []string{
				"| `ttl` | string |  |  | at most 32 characters<br>ttl must be greater than zero<br>rule `self != 'x\\|y'` |  |",
			},
		},
		"cross-field rules are listed under the object's heading": {
			schema: `
type: object
properties:
  session:
    type: object
    description: session configures sessions.
    x-kubernetes-validations:
    - rule: self.a < self.b
      message: session.a must be less than session.b
    - rule: has(self.a)
    properties:
      a: {type: integer}
      b: {type: integer}
`,
			want: []string{
				"| `session` | [object](#session) |  |  | rules for the whole object: see [`session`](#session) | session configures sessions. |",
				"### `session`",
				"Rules for the whole object:",
				"- session.a must be less than session.b",
				"- rule `has(self.a)`",
			},
		},
		"map with additionalProperties": {
			schema: `
type: object
properties:
  identityHeaders:
    type: object
    description: headers sent upstream.
    maxProperties: 32
    additionalProperties:
      type: string
      description: ClaimName names a claim.
      minLength: 1
      maxLength: 128
      pattern: ^[!-~]+$
    x-kubernetes-validations:
    - rule: self.all(h, h.size() <= 64)
      message: header names are at most 64 characters
`,
			want: []string{
				"| `identityHeaders` | map of string |  |  | at most 32 entries<br>header names are at most 64 characters<br>each value: 1 to 128 characters<br>each value: pattern: `^[!-~]+$` | headers sent upstream. Values: ClaimName names a claim. |",
			},
		},
		"array of objects": {
			schema: `
type: object
properties:
  rules:
    type: array
    description: rules are matched in order.
    minItems: 1
    maxItems: 64
    x-kubernetes-list-type: atomic
    x-kubernetes-validations:
    - rule: self.all(r, self.exists_one(o, o.name == r.name))
      message: rule names must be unique within a policy
    items:
      type: object
      description: Rule says how requests are authenticated.
      required: [name]
      x-kubernetes-validations:
      - rule: self.name != 'x'
        message: a rule cannot be named x
      properties:
        name: {type: string}
        roles:
          type: array
          maxItems: 16
          x-kubernetes-list-type: set
          items: {type: string, enum: [a, b]}
`,
			want: []string{
				"| `rules` | array of [object](#rules) |  |  | 1 to 64 items<br>list type `atomic`: replaced as a whole when applied<br>rule names must be unique within a policy<br>rules for each item: see [`rules[]`](#rules) | rules are matched in order. |",
				"### `rules[]`",
				"Each item of [`rules`](#test). Rule says how requests are authenticated.",
				"- a rule cannot be named x",
				"| `rules[].name` | string |  | yes |  |  |",
				"| `rules[].roles` | array of string |  |  | at most 16 items<br>list type `set`: items must be unique<br>each item: one of: `a`, `b` |  |",
			},
		},
		"list type map": {
			schema: `
type: object
properties:
  conditions:
    type: array
    x-kubernetes-list-type: map
    x-kubernetes-list-map-keys: [type]
    items:
      type: object
      properties:
        type: {type: string}
`,
			want: []string{
				"| `conditions` | array of [object](#conditions) |  |  | list type `map`, keyed by `type`: one item per key |  |",
			},
		},
		"pattern with a backtick and a pipe": {
			schema: "type: object\nproperties:\n  header:\n    type: string\n    pattern: \"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$\"\n",
			want: []string{
				"| `header` | string |  |  | pattern: ``^[A-Za-z0-9!#$%&'*+.^_`\\|~-]+$`` |  |",
			},
		},
		"description with pipes, newlines and Markdown characters": {
			schema: `
type: object
properties:
  hosts:
    type: array
    description: |-
      hosts such as "*.example.com" or
      "a|b", for <namespace>/<name> [x] __Host-* a_b
    items: {type: string, description: 'HostPattern is "*.example.com".'}
`,
			want: []string{
				"| `hosts` | array of string |  |  |  | hosts such as \"\\*.example.com\" or \"a\\|b\", for \\<namespace>/\\<name> \\[x\\] \\_\\_Host-\\* a_b Items: HostPattern is \"\\*.example.com\". |",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out := renderFields(schema(t, tc.schema), "Test", newSlugger())
			lines := map[string]bool{}
			for _, l := range strings.Split(out, "\n") {
				lines[l] = true
			}
			for _, w := range tc.want {
				if !lines[w] {
					t.Errorf("missing line\n  %s\nin\n%s", w, out)
				}
			}
			checkTables(t, out)
		})
	}
}

func TestCode(t *testing.T) {
	cases := map[string]string{
		"a":        "`a`",
		"a`b":      "``a`b``",
		"`a":       "`` `a ``",
		"a``b`":    "``` a``b` ```",
		"":         "`\"\"`",
		" a ":      "`  a  `",
		"^x|y$":    "`^x|y$`",
		"two\nlns": "`two lns`",
	}
	for in, want := range cases {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProse(t *testing.T) {
	cases := map[string]string{
		"plain words":                "plain words",
		"a  b\n c":                   "a b c",
		"*.example.com":              `\*.example.com`,
		"authgate_session":           "authgate_session",
		"__Host-":                    `\_\_Host-`,
		"<namespace>":                `\<namespace>`,
		"[x](y)":                     `\[x\](y)`,
		"a`b":                        "a\\`b",
		`C:\dir`:                     `C:\\dir`,
		"Q&A &amp; &#38;":            `Q&A \&amp; \&#38;`,
		"~strike~":                   `\~strike\~`,
		"pipes | stay for tableCell": "pipes | stay for tableCell",
	}
	for in, want := range cases {
		if got := prose(in); got != want {
			t.Errorf("prose(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSluggerMatchesGitHub(t *testing.T) {
	g := newSlugger()
	g.seed("# AuthPolicy reference\n\n## Fields\n\n```sh\n# not a heading\n```\n")
	for _, c := range []struct{ text, want string }{
		{"spec.rules[].match", "specrulesmatch"},
		{"Fields", "fields-1"},
		{"not a heading", "not-a-heading"},
		{"Printer columns", "printer-columns"},
		{"spec.jwt.trustedIssuers[]", "specjwttrustedissuers"},
	} {
		if got := g.slug(c.text); got != c.want {
			t.Errorf("slug(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

// TestRealCRD renders the project's CRD and checks, against an independent walk of its schema,
// that every field path has a row and every CEL rule's message appears.
func TestRealCRD(t *testing.T) {
	doc, err := generate(realCRD, realHeader)
	if err != nil {
		t.Fatal(err)
	}
	out := string(doc)
	header, err := os.ReadFile(realHeader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, strings.TrimRight(string(header), "\n")+"\n\n"+generatedMarker+"\n\n") {
		t.Errorf("the output does not start with the header and then the marker line")
	}
	again, err := generate(realCRD, realHeader)
	if err != nil || !bytes.Equal(doc, again) {
		t.Errorf("two runs gave different output (err %v)", err)
	}
	generated := out[strings.Index(out, generatedMarker):]
	checkTables(t, generated)

	crd, err := loadCRD(realCRD)
	if err != nil {
		t.Fatal(err)
	}
	v, err := documentedVersion(crd, realCRD)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| API group | `authgate.dev` |", "| Kind | `AuthPolicy` |", "| Plural | `authpolicies` |",
		"| Short names | `ap` |", "| Categories | `authgate` |", "| Scope | Namespaced |",
		"`.status.conditions[?(@.type==\"Ready\")].status`",
	} {
		if !strings.Contains(generated, want) {
			t.Errorf("the resource section lacks %s", want)
		}
	}

	var leaves, objects, messages []string
	var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
		for _, r := range s.XValidations {
			if r.Message != "" {
				messages = append(messages, r.Message)
			} else {
				messages = append(messages, r.Rule)
			}
		}
		switch {
		case len(s.Properties) > 0:
			if path != "" {
				objects = append(objects, path)
			}
			for name, p := range s.Properties {
				child := name
				if path != "" {
					child = path + "." + name
				}
				walk(child, &p)
			}
		case s.Items != nil && s.Items.Schema != nil && len(s.Items.Schema.Properties) > 0:
			walk(path+"[]", s.Items.Schema)
		case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil && len(s.AdditionalProperties.Schema.Properties) > 0:
			walk(path+".*", s.AdditionalProperties.Schema)
		default:
			leaves = append(leaves, path)
			if s.Items != nil && s.Items.Schema != nil {
				walk(path+"[]", s.Items.Schema) // only to collect the items' rules
			}
			if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
				walk(path+".*", s.AdditionalProperties.Schema)
			}
		}
	}
	walk("", v.Schema.OpenAPIV3Schema)
	if len(leaves) < 40 || len(messages) < 30 {
		t.Fatalf("the walk found only %d leaves and %d messages: is this the AuthPolicy CRD?", len(leaves), len(messages))
	}
	for _, p := range leaves {
		if strings.HasSuffix(p, "[]") || strings.HasSuffix(p, ".*") {
			continue // scalar items and values are described in their list's or map's row
		}
		if !strings.Contains(generated, "\n| `"+p+"` |") {
			t.Errorf("no row for field %s", p)
		}
	}
	for _, p := range objects {
		if !strings.Contains(generated, "\n### `"+p+"`\n") {
			t.Errorf("no section for object %s", p)
		}
	}
	plain := unescapeMarkdown(generated)
	for _, m := range messages {
		if !strings.Contains(plain, strings.Join(strings.Fields(m), " ")) {
			t.Errorf("rule message missing: %s", m)
		}
	}
}

// unescapeMarkdown undoes backslash escapes of ASCII punctuation, as a Markdown renderer does.
func unescapeMarkdown(s string) string {
	return regexp.MustCompile("\\\\([!-/:-@\\[-`{-~])").ReplaceAllString(s, "$1")
}

// checkTables checks that every row of every table has as many cells as its header: a pipe that
// was not escaped would add one.
func checkTables(t *testing.T, md string) {
	t.Helper()
	unescapedPipe := regexp.MustCompile(`(^|[^\\])\|`)
	want := -1
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "|") {
			want = -1
			continue
		}
		n := len(unescapedPipe.FindAllString(" "+l, -1))
		if want == -1 {
			want = n
		} else if n != want {
			t.Errorf("table row has %d cell separators, its header %d:\n%s", n, want, l)
		}
	}
}

// TestHeaderExample checks that the AuthPolicy examples in header.md only use fields that exist.
func TestHeaderExample(t *testing.T) {
	header, err := os.ReadFile(realHeader)
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(header), -1)
	found := 0
	for _, b := range blocks {
		if !strings.Contains(b[1], "kind: AuthPolicy") {
			continue
		}
		found++
		var p authgatev1.AuthPolicy
		if err := yaml.UnmarshalStrict([]byte(b[1]), &p); err != nil {
			t.Errorf("example AuthPolicy in header.md does not parse: %v\n%s", err, b[1])
		}
		if len(p.Spec.Rules) == 0 {
			t.Errorf("example AuthPolicy in header.md has no rules")
		}
	}
	if found == 0 {
		t.Error("header.md has no AuthPolicy example")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crdWithVersions := func(versions string) string {
		return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.example.com
spec:
  group: example.com
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions:` + versions
	}
	cases := map[string]struct {
		path string
		want []string
	}{
		"missing file": {
			path: filepath.Join(dir, "nope.yaml"),
			want: []string{"nope.yaml", "does not exist"},
		},
		"empty file": {
			path: write("empty.yaml", "# nothing\n---\n"),
			want: []string{"empty.yaml", "is empty"},
		},
		"not YAML": {
			path: write("text.yaml", "just some text\n"),
			want: []string{"text.yaml", "is not a CustomResourceDefinition"},
		},
		"another kind": {
			path: write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"),
			want: []string{"cm.yaml", "is not a CustomResourceDefinition", `"ConfigMap"`},
		},
		"no kind": {
			path: write("nokind.yaml", "a: 1\n"),
			want: []string{"nokind.yaml", "is not a CustomResourceDefinition", "no kind"},
		},
		"old apiVersion": {
			path: write("beta.yaml", "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\n"),
			want: []string{"beta.yaml", "apiextensions.k8s.io/v1beta1", "only apiextensions.k8s.io/v1"},
		},
		"two documents": {
			path: write("two.yaml", crdWithVersions(" []")+"\n---\n"+crdWithVersions(" []")),
			want: []string{"two.yaml", "2 YAML documents"},
		},
		"no versions": {
			path: write("noversions.yaml", crdWithVersions(" []")),
			want: []string{"noversions.yaml", "things.example.com", "no versions"},
		},
		"no schema": {
			path: write("noschema.yaml", crdWithVersions("\n  - {name: v1, served: true, storage: true}\n")),
			want: []string{"noschema.yaml", "version v1", "no schema", "openAPIV3Schema is missing"},
		},
		"schema without properties": {
			path: write("empty-schema.yaml", crdWithVersions("\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {type: object}\n")),
			want: []string{"empty-schema.yaml", "no schema", "defines no properties"},
		},
		"no storage version": {
			path: write("nostorage.yaml", crdWithVersions("\n  - {name: v1, served: true, storage: false}\n")),
			want: []string{"nostorage.yaml", "no storage version"},
		},
		"wrong field types": {
			path: write("badtypes.yaml", crdWithVersions(" {name: v1}\n")),
			want: []string{"badtypes.yaml", "not a valid CustomResourceDefinition"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := generate(tc.path, "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}

	t.Run("missing header", func(t *testing.T) {
		_, err := generate(realCRD, filepath.Join(dir, "header.md"))
		if err == nil || !strings.Contains(err.Error(), "header.md: file does not exist") {
			t.Errorf("got %v", err)
		}
	})
}

func TestRunAndCheck(t *testing.T) {
	out := filepath.Join(t.TempDir(), "docs", "policy-reference.md")
	args := []string{"-crd", realCRD, "-header", realHeader, "-out", out}
	runIt := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		return code, stderr.String()
	}

	if code, stderr := runIt(append(args, "-check")...); code != 1 || !strings.Contains(stderr, out+" does not exist: run make manifests") {
		t.Errorf("-check without output: exit %d, %q", code, stderr)
	}
	if code, stderr := runIt(args...); code != 0 {
		t.Fatalf("writing: exit %d, %s", code, stderr)
	}
	if code, stderr := runIt(append(args, "-check")...); code != 0 {
		t.Errorf("-check right after writing: exit %d, %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, bytes.Replace(data, []byte("`\"168h\"`"), []byte("`\"24h\"`"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := runIt(append(args, "-check")...); code != 1 || !strings.Contains(stderr, out+" is stale: run make manifests") {
		t.Errorf("-check of an edited file: exit %d, %q", code, stderr)
	}

	for _, bad := range [][]string{
		{"-header", realHeader, "-out", out},
		{"-crd", realCRD},
		{"-crd", realCRD, "-out", out, "extra"},
		{"-nosuchflag"},
	} {
		if code, _ := runIt(bad...); code != 2 {
			t.Errorf("run(%q) = %d, want 2", bad, code)
		}
	}
	if code, stderr := runIt("-crd", filepath.Join(t.TempDir(), "x.yaml"), "-out", out); code != 1 || !strings.Contains(stderr, "x.yaml: file does not exist") {
		t.Errorf("missing CRD: exit %d, %q", code, stderr)
	}
}

// TestNoPanics feeds odd but well-formed schemas through the renderer.
func TestNoPanics(t *testing.T) {
	s := &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"any":        {XPreserveUnknownFields: ptr.To(true)},
		"intstr":     {XIntOrString: true, AnyOf: []apiextensionsv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
		"arr":        {Type: "array"},
		"tuple":      {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{JSONSchemas: []apiextensionsv1.JSONSchemaProps{{Type: "string"}, {Type: "integer"}}}},
		"free":       {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true}},
		"listType":   {Type: "array", XListType: ptr.To("map"), Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
		"badEnum":    {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte("not json")}, {Raw: []byte(`""`)}}},
		"badDefault": {Type: "string", Default: &apiextensionsv1.JSON{Raw: []byte("{")}},
		"mapOfObj": {Type: "object", AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"x": {Type: "string"}},
		}}},
	}}
	out := renderFields(s, "", newSlugger())
	for _, want := range []string{
		"| `intstr` | integer or string |",
		"| `any` | any |",
		"| `mapOfObj` | map of [object](#mapofobj) |",
		"### `mapOfObj.*`",
		"| `mapOfObj.*.x` | string |",
		"one of: `not json`, `\"\"`",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
