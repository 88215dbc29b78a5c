package policy

import (
	"strings"
	"testing"
)

// normPathCase is one NormalizePath case: either want is the canonical path,
// or wantErr is a substring the error message must contain.
type normPathCase struct {
	in      string
	want    string
	wantErr string
}

// normPathCases is shared with the fuzz seed corpus.
var normPathCases = map[string]normPathCase{
	// Basics.
	"empty is root":               {in: "", want: "/"},
	"root":                        {in: "/", want: "/"},
	"simple":                      {in: "/a", want: "/a"},
	"already canonical":           {in: "/api/v1/users", want: "/api/v1/users"},
	"trailing slash kept":         {in: "/a/", want: "/a/"},
	"unreserved punctuation kept": {in: "/a-b_c~d.e", want: "/a-b_c~d.e"},
	"sub-delims kept":             {in: "/a!$&'()*+,=:@b", want: "/a!$&'()*+,=:@b"},

	// Case folding.
	"upper case folded":          {in: "/ADMIN", want: "/admin"},
	"mixed case with slash":      {in: "/Admin/", want: "/admin/"},
	"encoded upper case":         {in: "/%41DMIN", want: "/admin"},
	"non-ASCII not folded":       {in: "/CAF%C3%89", want: "/caf\xc3\x89"},
	"raw UTF-8 kept":             {in: "/caf\xc3\xa9", want: "/caf\xc3\xa9"},
	"encoded UTF-8 decoded":      {in: "/caf%C3%A9", want: "/caf\xc3\xa9"},
	"invalid UTF-8 kept as is":   {in: "/a\xff\xfe", want: "/a\xff\xfe"},
	"encoded invalid UTF-8 kept": {in: "/a%FF", want: "/a\xff"},
	"kelvin sign not folded":     {in: "/\xe2\x84\xaa", want: "/\xe2\x84\xaa"},

	// Decoding exactly once.
	"encoded letter":          {in: "/%61dmin", want: "/admin"},
	"encoded lower hex":       {in: "/%7euser", want: "/~user"},
	"encoded tilde":           {in: "/%7Euser", want: "/~user"},
	"lone percent at end":     {in: "/100%", want: "/100%"},
	"percent one hex digit":   {in: "/a%4", want: "/a%4"},
	"percent non-hex":         {in: "/%zz", want: "/%zz"},
	"percent hex then non":    {in: "/%4g", want: "/%4g"},
	"encoded percent":         {in: "/100%25", want: "/100%"},
	"encoded percent non-hex": {in: "/%25zz", want: "/%zz"},
	"percent before escape":   {in: "/%%41", want: "/%a"},
	"percent before slash":    {in: "/a%/b", want: "/a%/b"},
	"encoded space kept":      {in: "/my%20file.pdf", want: "/my%20file.pdf"},
	"encoded space folded":    {in: "/My%20File", want: "/my%20file"},
	"lone percent then space": {in: "/a%%20b", want: "/a%%20b"},

	// Duplicate slashes and dot-segments.
	"double slash":               {in: "//admin", want: "/admin"},
	"many slashes":               {in: "///admin//x///", want: "/admin/x/"},
	"dot segment":                {in: "/./admin", want: "/admin"},
	"inner dot segment":          {in: "/a/./b", want: "/a/b"},
	"dotdot":                     {in: "/api/../admin", want: "/admin"},
	"dotdot above root":          {in: "/../admin", want: "/admin"},
	"only dotdots":               {in: "/../../..", want: "/"},
	"trailing dotdot":            {in: "/a/b/..", want: "/a/"},
	"trailing dot":               {in: "/a/b/.", want: "/a/b/"},
	"trailing dotdot to root":    {in: "/a/..", want: "/"},
	"encoded dotdot":             {in: "/public/%2e%2e/admin", want: "/admin"},
	"encoded dotdot upper":       {in: "/public/%2E%2E/admin", want: "/admin"},
	"half encoded dotdot":        {in: "/public/.%2e/admin", want: "/admin"},
	"encoded trailing dot seg":   {in: "/a/b/%2e", want: "/a/b/"},
	"dots inside name kept":      {in: "/a..b/c.d", want: "/a..b/c.d"},
	"leading dots kept":          {in: "/..a", want: "/..a"},
	"dotdot after double slash":  {in: "/a//..", want: "/"},
	"dotdot after empty segment": {in: "/a/b//../c", want: "/a/c"},

	// Trailing dots and spaces (Windows).
	"trailing dot stripped":        {in: "/admin.", want: "/admin"},
	"trailing dot mid path":        {in: "/admin./x", want: "/admin/x"},
	"many trailing dots":           {in: "/admin.../x", want: "/admin/x"},
	"encoded trailing dots":        {in: "/a/b%2e%2e", want: "/a/b"},
	"trailing space stripped":      {in: "/admin%20", want: "/admin"},
	"trailing dot and space":       {in: "/admin.%20.", want: "/admin"},
	"inner space kept":             {in: "/a%20b", want: "/a%20b"},
	"three dots dropped":           {in: "/.../admin", want: "/admin"},
	"four dots dropped":            {in: "/..../admin", want: "/admin"},
	"three dots at end":            {in: "/a/...", want: "/a/"},
	"encoded three dots":           {in: "/a/%2e%2e%2e/b", want: "/a/b"},
	"dot space segment":            {in: "/a/.%20/b", wantErr: "only of dots and spaces"},
	"dotdot space segment":         {in: "/public/..%20/admin", wantErr: "only of dots and spaces"},
	"space dotdot segment":         {in: "/public/%20../admin", wantErr: "only of dots and spaces"},
	"space only segment":           {in: "/a/%20/b", wantErr: "only of dots and spaces"},
	"space only segment at end":    {in: "/a/%20", wantErr: "only of dots and spaces"},
	"encoded dot space dot":        {in: "/%2e%20%2e", wantErr: "only of dots and spaces"},
	"dotdot with params and space": {in: "/..%20;x/admin", wantErr: "only of dots and spaces"},

	// Path parameters (Java servlet containers).
	"jsessionid":                   {in: "/admin;jsessionid=1", want: "/admin"},
	"param":                        {in: "/admin;x=1", want: "/admin"},
	"param mid path":               {in: "/admin;x=1/users", want: "/admin/users"},
	"dotdot with empty param":      {in: "/public/..;/admin", want: "/admin"},
	"dotdot with param":            {in: "/public/..;x=y/admin", want: "/admin"},
	"dot with param":               {in: "/.;x/admin", want: "/admin"},
	"param only segment":           {in: "/;x/admin", want: "/admin"},
	"param only final segment":     {in: "/a/;x", want: "/a/"},
	"several params":               {in: "/a;b;c/d", want: "/a/d"},
	"encoded semicolon":            {in: "/a%3bb/c", want: "/a/c"},
	"encoded semicolon upper":      {in: "/admin%3B/x", want: "/admin/x"},
	"param then trailing dot":      {in: "/admin.;x", want: "/admin"},
	"three dots with param":        {in: "/a/...;x/b", want: "/a/b"},
	"param hides double encoding?": {in: "/a;%2561", wantErr: "double-encoded"},

	// Not an origin-form path.
	"relative":     {in: "admin", wantErr: "must start with '/'"},
	"asterisk":     {in: "*", wantErr: "asterisk-form"},
	"absolute URL": {in: "http://x/", wantErr: "absolute URLs"},
	"dot relative": {in: "./admin", wantErr: "must start with '/'"},

	// Raw bytes that are never valid.
	"raw space":       {in: "/a b", wantErr: "raw space"},
	"raw NUL":         {in: "/a\x00", wantErr: "control character 0x00"},
	"raw tab":         {in: "/a\tb", wantErr: "control character 0x09"},
	"raw newline":     {in: "/a\nb", wantErr: "control character 0x0A"},
	"raw DEL":         {in: "/a\x7f", wantErr: "control character 0x7F"},
	"raw hash":        {in: "/a#b", wantErr: "'#'"},
	"raw backslash":   {in: "/a\\b", wantErr: "backslash"},
	"raw backslashes": {in: "/public\\..\\admin", wantErr: "backslash"},
	"raw question":    {in: "/a?b=c", wantErr: "'?'"},

	// Encoded bytes that servers disagree on.
	"encoded slash":             {in: "/a%2Fb", wantErr: "encoded slash (%2F)"},
	"encoded slash lower":       {in: "/a%2fb", wantErr: "encoded slash (%2F)"},
	"encoded slash traversal":   {in: "/public%2F..%2Fadmin", wantErr: "encoded slash"},
	"trailing encoded slash":    {in: "/admin%2F", wantErr: "encoded slash"},
	"encoded backslash":         {in: "/a%5Cb", wantErr: "encoded backslash (%5C)"},
	"encoded backslash lower":   {in: "/a%5cb", wantErr: "encoded backslash (%5C)"},
	"encoded NUL":               {in: "/admin%00.css", wantErr: "encoded control character (%00)"},
	"encoded LF":                {in: "/a%0a", wantErr: "encoded control character (%0A)"},
	"encoded CRLF":              {in: "/a%0D%0Ab", wantErr: "encoded control character (%0D)"},
	"encoded DEL":               {in: "/a%7F", wantErr: "encoded control character (%7F)"},
	"encoded question":          {in: "/admin%3F.css", wantErr: "encoded '?' (%3F)"},
	"encoded question lower":    {in: "/admin%3f", wantErr: "encoded '?' (%3F)"},
	"encoded hash":              {in: "/admin%23x", wantErr: "encoded '#' (%23)"},
	"double-encoded letter":     {in: "/%2561dmin", wantErr: "double-encoded"},
	"double-encoded slash":      {in: "/a%252Fb", wantErr: "double-encoded"},
	"double-encoded dot":        {in: "/public/%252e%252e/admin", wantErr: "double-encoded"},
	"double-encoded lower":      {in: "/%25fe", wantErr: "double-encoded"},
	"split double encoding":     {in: "/%%34%31", wantErr: "double-encoded"},
	"literal percent then hex":  {in: "/%%41b", wantErr: "double-encoded"},
	"encoded percent then hex":  {in: "/%2541", wantErr: "double-encoded"},
	"encoded percent, hex pair": {in: "/100%25%34%31", wantErr: "double-encoded"},

	// Encodings that lenient decoders turn into ASCII.
	"IIS %u dot":              {in: "/public/%u002e%u002e/admin", wantErr: "%u escape"},
	"IIS %U upper":            {in: "/%U0061dmin", wantErr: "%u escape"},
	"encoded IIS %u":          {in: "/%25u002e", wantErr: "%u escape"},
	"%u too short is literal": {in: "/%u002", want: "/%u002"},
	"%u non-hex is literal":   {in: "/%uzzzz", want: "/%uzzzz"},
	"overlong dot":            {in: "/public/%c0%ae%c0%ae/admin", wantErr: "overlong UTF-8"},
	"overlong slash":          {in: "/public%C0%AF..%C0%AFadmin", wantErr: "overlong UTF-8"},
	"raw overlong dot":        {in: "/public/\xc0\xae\xc0\xae/admin", wantErr: "overlong UTF-8"},
	"overlong C1":             {in: "/%C1%81", wantErr: "overlong UTF-8"},
	"overlong 3-byte dot":     {in: "/%E0%80%AE%E0%80%AE/admin", wantErr: "overlong UTF-8"},
	"overlong 4-byte":         {in: "/%F0%80%80%AE", wantErr: "overlong UTF-8"},
	"valid 3-byte E0 kept":    {in: "/%E0%A4%85", want: "/\xe0\xa4\x85"},
	"valid 4-byte F0 kept":    {in: "/%F0%9F%98%80", want: "/\xf0\x9f\x98\x80"},
	"lone E0 kept":            {in: "/a%E0", want: "/a\xe0"},
}

func TestNormalizePath(t *testing.T) {
	for name, tc := range normPathCases {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizePath(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("NormalizePath(%q) = %q, want error containing %q", tc.in, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NormalizePath(%q) error = %q, want it to contain %q", tc.in, err, tc.wantErr)
				}
				if got != "" {
					t.Errorf("NormalizePath(%q) returned %q along with an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePath(%q) unexpected error: %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("NormalizePath(%q) = %q, want %q", tc.in, got, tc.want)
			}
			again, err := NormalizePath(got)
			if err != nil || again != got {
				t.Fatalf("NormalizePath(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestNormalizePathErrorNamesInput(t *testing.T) {
	_, err := NormalizePath("/a%2Fb")
	if err == nil {
		t.Fatal("expected error")
	}
	if want := `path "/a%2Fb": encoded slash (%2F) is not allowed`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %q, want prefix %q", err, want)
	}
}

func TestNormalizePathErrorTruncatesInput(t *testing.T) {
	long := "/" + strings.Repeat("a", 5000) + "%2F"
	_, err := NormalizePath(long)
	if err == nil {
		t.Fatal("expected error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "encoded slash") {
		t.Errorf("error %q does not name the problem", msg)
	}
	if strings.Count(msg, "a") > normMaxQuoted+10 {
		t.Errorf("error echoes %d bytes of input, want about %d at most: %q", strings.Count(msg, "a"), normMaxQuoted, msg)
	}
	if !strings.Contains(msg, `"...`) {
		t.Errorf("error %q does not mark the truncation", msg)
	}

	// Escaped control bytes in the quote must not leak the raw bytes.
	_, err = NormalizePath("/\x00" + strings.Repeat("\n", 500))
	if err == nil || strings.ContainsAny(err.Error(), "\x00\n") {
		t.Errorf("error %q contains raw control characters", err)
	}
}

func TestNormalizePathLongPaths(t *testing.T) {
	// Longer than the on-stack buffers, so the append growth path runs.
	seg := strings.Repeat("Ab", 200)
	in := "/" + seg + "/./x/../" + seg + "%20z;p"
	want := "/" + strings.ToLower(seg) + "/" + strings.ToLower(seg) + "%20z"
	got, err := NormalizePath(in)
	if err != nil || got != want {
		t.Fatalf("NormalizePath(long) = %q, %v; want %q", got, err, want)
	}
	deep := strings.Repeat("/..", 1000) + strings.Repeat("/a", 1000)
	got, err = NormalizePath(deep)
	if err != nil || got != strings.Repeat("/a", 1000) {
		t.Fatalf("NormalizePath(deep) = %.40q..., %v", got, err)
	}
}

// TestNormalizePathSecurity is the reason this file exists: each trick must
// either be rejected or land on the protected rule, and never on the lenient
// one.
func TestNormalizePathSecurity(t *testing.T) {
	protected, err := PathPrefix("/admin")
	if err != nil {
		t.Fatal(err)
	}
	lenient, err := PathPrefix("/public/")
	if err != nil {
		t.Fatal(err)
	}
	tricks := []string{
		"/api/../admin",
		"/%61dmin",
		"//admin",
		"/ADMIN",
		"/Admin/",
		"/admin;x=1",
		"/public/..;/admin",
		"/admin.",
		"/admin./x",
		"/./admin",
		"/public/%2e%2e/admin",
		"/public/%2E%2E/admin",
		"/public/.%2E/admin",
		"/public/%2e./admin",
		"/public/..%3b/admin",
		"/public/..;jsessionid=1/admin",
		"/public/../../admin",
		"/public//../admin",
		"/public/x/../../admin",
		"/public/.../../admin",
		"/public/..%20/admin",
		"/public/..%2F..%2Fadmin",
		"/public%2F..%2Fadmin",
		"/public/%252e%252e/admin",
		"/public/%2e%2e%2fadmin",
		"/public/..\\admin",
		"/public/..%5Cadmin",
		"/public/%00/../admin",
		"/public/x%3F/../../admin",
		"/%2561dmin",
		"/admin%2F",
		"/admin%20",
		"/admin%3B",
		"/ADMIN%2e",
		"/aDmIn;/",
		"/%41%44%4d%49%4e",
		"/public/%u002e%u002e/admin",
		"/public/%c0%ae%c0%ae/admin",
		"/public/%e0%80%ae%e0%80%ae/admin",
		"/public/\xc0\xae\xc0\xae/admin",
		"/public%c0%af..%c0%afadmin",
	}
	for _, trick := range tricks {
		t.Run(trick, func(t *testing.T) {
			got, err := NormalizePath(trick)
			if err != nil {
				return // rejected: safe
			}
			if !protected.Matches(got) {
				t.Errorf("NormalizePath(%q) = %q: does not match protected prefix %q", trick, got, protected)
			}
			if lenient.Matches(got) {
				t.Errorf("NormalizePath(%q) = %q: matches lenient prefix %q", trick, got, lenient)
			}
		})
	}
}

func TestNormalizePathCanonicalFastPathAgrees(t *testing.T) {
	for name, tc := range normPathCases {
		if tc.in == "" || tc.in[0] != '/' {
			continue
		}
		if normIsCanonicalPath(tc.in) {
			got, err := normPathSlow(tc.in)
			if err != nil || got != tc.in {
				t.Errorf("%s: fast path accepts %q but full algorithm gives %q, %v", name, tc.in, got, err)
			}
		}
	}
}

func TestSplitRequestURI(t *testing.T) {
	tests := map[string]struct {
		in        string
		wantPath  string
		wantQuery string
		wantErr   string
	}{
		"path only":            {in: "/a/b", wantPath: "/a/b"},
		"path and query":       {in: "/a?x=1&y=2", wantPath: "/a", wantQuery: "x=1&y=2"},
		"empty":                {in: "", wantPath: "/"},
		"query only":           {in: "?x=1", wantPath: "/", wantQuery: "x=1"},
		"empty query":          {in: "/a?", wantPath: "/a"},
		"second question mark": {in: "/a?b?c", wantPath: "/a", wantQuery: "b?c"},
		"encoded question":     {in: "/a%3Fb?c", wantPath: "/a%3Fb", wantQuery: "c"},
		"raw path kept":        {in: "//A/../%2e?Q", wantPath: "//A/../%2e", wantQuery: "Q"},
		"fragment":             {in: "/a#b", wantErr: "'#'"},
		"fragment in query":    {in: "/a?b#c", wantErr: "'#'"},
		"absolute form":        {in: "http://h/p", wantErr: "origin-form"},
		"absolute with query":  {in: "https://h/p?q", wantErr: "origin-form"},
		"asterisk form":        {in: "*", wantErr: "origin-form"},
		"relative":             {in: "a/b?c", wantErr: "origin-form"},
		"authority form":       {in: "example.com:443", wantErr: "origin-form"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path, query, err := SplitRequestURI(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("SplitRequestURI(%q) = %q, %q, %v; want error containing %q", tc.in, path, query, err, tc.wantErr)
				}
				return
			}
			if err != nil || path != tc.wantPath || query != tc.wantQuery {
				t.Fatalf("SplitRequestURI(%q) = %q, %q, %v; want %q, %q", tc.in, path, query, err, tc.wantPath, tc.wantQuery)
			}
		})
	}
}

type normHostCase struct {
	in      string
	want    string
	wantErr string
}

var normHostCases = map[string]normHostCase{
	"simple":                  {in: "example.com", want: "example.com"},
	"upper case":              {in: "Shop.EXAMPLE.com", want: "shop.example.com"},
	"port":                    {in: "example.com:8080", want: "example.com"},
	"empty port":              {in: "example.com:", want: "example.com"},
	"max port":                {in: "example.com:65535", want: "example.com"},
	"trailing dot":            {in: "example.com.", want: "example.com"},
	"trailing dot and port":   {in: "Example.COM.:443", want: "example.com"},
	"single label":            {in: "localhost", want: "localhost"},
	"underscore":              {in: "exa_mple.com", want: "exa_mple.com"},
	"hyphen":                  {in: "my-shop.example.com", want: "my-shop.example.com"},
	"digits":                  {in: "1.2.3.4", want: "1.2.3.4"},
	"IPv4 with port":          {in: "10.0.0.1:80", want: "10.0.0.1"},
	"IPv6 with port":          {in: "[::1]:8080", want: "::1"},
	"IPv6 no port":            {in: "[::1]", want: "::1"},
	"IPv6 upper case":         {in: "[2001:DB8::A]", want: "2001:db8::a"},
	"IPv6 long form":          {in: "[2001:db8:0:0:0:0:0:1]", want: "2001:db8::1"},
	"IPv6 bare":               {in: "::1", want: "::1"},
	"IPv6 v4-mapped":          {in: "[::FFFF:1.2.3.4]:1", want: "::ffff:1.2.3.4"},
	"IPv6 empty port":         {in: "[::1]:", want: "::1"},
	"max label length":        {in: strings.Repeat("a", 63) + ".com", want: strings.Repeat("a", 63) + ".com"},
	"empty":                   {in: "", wantErr: "empty"},
	"only port":               {in: ":80", wantErr: "empty"},
	"only dot":                {in: ".", wantErr: "empty"},
	"two trailing dots":       {in: "example.com..", wantErr: "empty label"},
	"double dot":              {in: "a..b", wantErr: "empty label"},
	"leading dot":             {in: ".example.com", wantErr: "empty label"},
	"space":                   {in: "a b", wantErr: "invalid character ' '"},
	"slash":                   {in: "a/b", wantErr: "invalid character '/'"},
	"userinfo":                {in: "user@example.com", wantErr: "invalid character '@'"},
	"wildcard":                {in: "*.example.com", wantErr: "invalid character '*'"},
	"NUL":                     {in: "a\x00b", wantErr: "invalid character"},
	"non-ASCII":               {in: "b\xc3\xbccher.de", wantErr: "punycode"},
	"bad port":                {in: "example.com:http", wantErr: "port"},
	"port too big":            {in: "example.com:65536", wantErr: "port"},
	"port too long":           {in: "example.com:000080", wantErr: "port"},
	"negative port":           {in: "example.com:-1", wantErr: "port"},
	"IPv6 bad port":           {in: "[::1]:x", wantErr: "port"},
	"IPv6 unclosed":           {in: "[::1", wantErr: "missing ']'"},
	"IPv6 junk after bracket": {in: "[::1]x", wantErr: "after ']'"},
	"IPv6 invalid":            {in: "[::g]", wantErr: "invalid IPv6"},
	"IPv4 in brackets":        {in: "[1.2.3.4]", wantErr: "invalid IPv6"},
	"IPv6 zone":               {in: "[fe80::1%25eth0]", wantErr: "zone"},
	"bare IPv6 zone":          {in: "fe80::1%eth0", wantErr: "zone"},
	"bare IPv6 with port":     {in: "::1:8080:x", wantErr: "invalid IPv6"},
	"brackets empty":          {in: "[]", wantErr: "invalid IPv6"},
	"label too long":          {in: strings.Repeat("a", 64) + ".com", wantErr: "longer than 63"},
	"name too long":           {in: strings.Repeat("abcdefghi.", 26), wantErr: "longer than 253"},
	"long input truncated":    {in: strings.Repeat("x", 300) + "!", wantErr: `"...`},
}

func TestNormalizeHost(t *testing.T) {
	for name, tc := range normHostCases {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizeHost(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NormalizeHost(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				if len(err.Error()) > 2*normMaxQuoted+100 {
					t.Errorf("error message too long (%d bytes): %q", len(err.Error()), err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			again, err := NormalizeHost(got)
			if err != nil || again != got {
				t.Fatalf("NormalizeHost(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestHostPattern(t *testing.T) {
	tests := map[string]struct {
		pattern      string
		wantErr      string
		wantString   string
		wantWildcard bool
		match        []string
		noMatch      []string
	}{
		"exact": {
			pattern: "shop.example.com", wantString: "shop.example.com",
			match:   []string{"shop.example.com"},
			noMatch: []string{"example.com", "a.shop.example.com", "shop.example.co", "hop.example.com", "shop.example.com.evil", ""},
		},
		"exact folded": {
			pattern: "Shop.Example.COM.", wantString: "shop.example.com",
			match: []string{"shop.example.com"},
		},
		"exact with underscore": {
			pattern: "my_svc.local", wantString: "my_svc.local",
			match: []string{"my_svc.local"},
		},
		"wildcard": {
			pattern: "*.example.com", wantString: "*.example.com", wantWildcard: true,
			match:   []string{"a.example.com", "shop.example.com", "x-y_z.example.com"},
			noMatch: []string{"example.com", "a.b.example.com", ".example.com", "aexample.com", "a.example.com.evil", "a.example.co", "example.com.a", ""},
		},
		"wildcard folded": {
			pattern: "*.EXAMPLE.com.", wantString: "*.example.com", wantWildcard: true,
			match: []string{"a.example.com"},
		},
		"wildcard single label": {
			pattern: "*.com", wantString: "*.com", wantWildcard: true,
			match:   []string{"example.com"},
			noMatch: []string{"a.example.com", "com", ".com"},
		},
		"IPv6 bracketed": {
			pattern: "[2001:DB8::1]", wantString: "2001:db8::1",
			match:   []string{"2001:db8::1"},
			noMatch: []string{"2001:db8::2"},
		},
		"IPv6 bare": {
			pattern: "::1", wantString: "::1",
			match: []string{"::1"},
		},
		"IPv4": {
			pattern: "10.0.0.1", wantString: "10.0.0.1",
			match:   []string{"10.0.0.1"},
			noMatch: []string{"10.0.0.10"},
		},
		"empty":               {pattern: "", wantErr: "empty"},
		"star alone":          {pattern: "*", wantErr: "first label"},
		"star dot":            {pattern: "*.", wantErr: "empty"},
		"star in middle":      {pattern: "a.*.com", wantErr: "first label"},
		"star prefix":         {pattern: "*x.com", wantErr: "first label"},
		"double star":         {pattern: "*.*.com", wantErr: "first label"},
		"star suffix":         {pattern: "example.*", wantErr: "first label"},
		"star star":           {pattern: "**.com", wantErr: "first label"},
		"empty label":         {pattern: "a..com", wantErr: "empty label"},
		"leading dot":         {pattern: ".example.com", wantErr: "empty label"},
		"wildcard empty":      {pattern: "*..com", wantErr: "empty label"},
		"port":                {pattern: "example.com:80", wantErr: "port"},
		"IPv6 port":           {pattern: "[::1]:80", wantErr: "port"},
		"wildcard port":       {pattern: "*.example.com:80", wantErr: "port"},
		"invalid char":        {pattern: "exa mple.com", wantErr: "invalid character"},
		"slash":               {pattern: "example.com/x", wantErr: "invalid character '/'"},
		"non-ASCII":           {pattern: "*.b\xc3\xbccher.de", wantErr: "punycode"},
		"two trailing dots":   {pattern: "example.com..", wantErr: "empty label"},
		"wildcard on IPv6":    {pattern: "*.[::1]", wantErr: "DNS name"},
		"IPv6 zone":           {pattern: "fe80::1%eth0", wantErr: "zone"},
		"broken IPv6 bracket": {pattern: "[::1", wantErr: "missing ']'"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := ParseHostPattern(tc.pattern)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHostPattern(%q) = %v, %v; want error containing %q", tc.pattern, p, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHostPattern(%q): %v", tc.pattern, err)
			}
			if p.String() != tc.wantString {
				t.Errorf("String() = %q, want %q", p.String(), tc.wantString)
			}
			if p.IsWildcard() != tc.wantWildcard {
				t.Errorf("IsWildcard() = %v, want %v", p.IsWildcard(), tc.wantWildcard)
			}
			for _, h := range tc.match {
				if !p.Matches(h) {
					t.Errorf("%q should match %q", p, h)
				}
			}
			for _, h := range tc.noMatch {
				if p.Matches(h) {
					t.Errorf("%q should not match %q", p, h)
				}
			}
			// The pattern's canonical form must parse to the same pattern.
			again, err := ParseHostPattern(p.String())
			if err != nil || again != p {
				t.Errorf("ParseHostPattern(%q) = %v, %v; want %v", p.String(), again, err, p)
			}
		})
	}
}

func TestHostPatternMatchesNormalizedHosts(t *testing.T) {
	p, err := ParseHostPattern("*.example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"A.Example.COM", "a.example.com.", "a.example.com:8443", "A.EXAMPLE.COM.:1"} {
		h, err := NormalizeHost(raw)
		if err != nil {
			t.Fatalf("NormalizeHost(%q): %v", raw, err)
		}
		if !p.Matches(h) {
			t.Errorf("%q does not match NormalizeHost(%q) = %q", p, raw, h)
		}
	}
	v6, err := ParseHostPattern("::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"[::1]:80", "[0:0:0:0:0:0:0:1]", "[0::1]"} {
		h, err := NormalizeHost(raw)
		if err != nil || !v6.Matches(h) {
			t.Errorf("%q does not match NormalizeHost(%q) = %q, %v", v6, raw, h, err)
		}
	}
}

func TestHostPatternZeroValueMatchesNothing(t *testing.T) {
	var p HostPattern
	for _, h := range []string{"", "example.com", "a.example.com"} {
		if p.Matches(h) {
			t.Errorf("zero HostPattern matches %q", h)
		}
	}
}

func TestPathMatchers(t *testing.T) {
	tests := map[string]struct {
		exact      bool
		path       string
		wantErr    string
		wantString string
		match      []string
		noMatch    []string
	}{
		"exact": {
			exact: true, path: "/login",
			match:   []string{"/login"},
			noMatch: []string{"/login/", "/login/x", "/loginx", "/", "/Login", ""},
		},
		"exact folds case": {
			exact: true, path: "/Login",
			match:   []string{"/login"},
			noMatch: []string{"/Login"},
		},
		"exact trailing slash significant": {
			exact: true, path: "/docs/",
			match:   []string{"/docs/"},
			noMatch: []string{"/docs", "/docs/x"},
		},
		"exact collapses slashes and trailing dots": {
			exact: true, path: "//a.//B..",
			match: []string{"/a/b"},
		},
		"exact root": {
			exact: true, path: "/",
			match:   []string{"/"},
			noMatch: []string{"/a"},
		},
		"exact with space": {
			exact: true, path: "/my docs",
			match: []string{"/my%20docs"},
		},
		"exact non-ASCII": {
			exact: true, path: "/caf\xc3\xa9",
			match: []string{"/caf\xc3\xa9"},
		},
		"prefix": {
			path:    "/api",
			match:   []string{"/api", "/api/", "/api/x", "/api/x/y"},
			noMatch: []string{"/apix", "/ap", "/", "/v1/api", "", "/API"},
		},
		"prefix with trailing slash": {
			path:    "/api/",
			match:   []string{"/api", "/api/", "/api/x"},
			noMatch: []string{"/apix", "/"},
		},
		"prefix root": {
			path:  "/",
			match: []string{"/", "/a", "/a/b/"},
		},
		"prefix multi segment": {
			path:    "/Api/V1",
			match:   []string{"/api/v1", "/api/v1/users"},
			noMatch: []string{"/api/v10", "/api", "/api/"},
		},
		"prefix collapses slashes": {
			path:  "//api//",
			match: []string{"/api/x"},
		},
		"empty":                {path: "", wantErr: "must start with '/'"},
		"relative":             {path: "api", wantErr: "must start with '/'"},
		"percent":              {path: "/a%20b", wantErr: "decoded"},
		"question":             {path: "/a?b", wantErr: "'?'"},
		"hash":                 {path: "/a#b", wantErr: "'#'"},
		"semicolon":            {path: "/a;b", wantErr: "';'"},
		"backslash":            {path: "/a\\b", wantErr: "backslash"},
		"control":              {path: "/a\x00", wantErr: "control character"},
		"tab":                  {path: "/a\tb", wantErr: "control character"},
		"dot segment":          {path: "/a/./b", wantErr: "dot-segments"},
		"dotdot segment":       {path: "/a/../b", wantErr: "dot-segments"},
		"trailing dotdot":      {path: "/a/..", wantErr: "dot-segments"},
		"exact dotdot":         {exact: true, path: "/..", wantErr: "dot-segments"},
		"three dots":           {path: "/a/.../b", wantErr: "only of dots and spaces"},
		"space only segment":   {path: "/a/ /b", wantErr: "only of dots and spaces"},
		"exact percent":        {exact: true, path: "/%61dmin", wantErr: "decoded"},
		"exact semicolon":      {exact: true, path: "/admin;x", wantErr: "';'"},
		"overlong UTF-8":       {exact: true, path: "/\xc0", wantErr: "overlong UTF-8"},
		"overlong 3-byte":      {path: "/a\xe0\x80\xae", wantErr: "overlong UTF-8"},
		"other invalid UTF-8":  {exact: true, path: "/a\xff", match: []string{"/a\xff"}},
		"long path truncated":  {path: "/" + strings.Repeat("a", 300) + "?", wantErr: `"...`},
		"string is as written": {path: "/API/", wantString: "/API/", match: []string{"/api"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			build := PathPrefix
			if tc.exact {
				build = ExactPath
			}
			m, err := build(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("build(%q) = %v; want error containing %q", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("build(%q): %v", tc.path, err)
			}
			if m.IsExact() != tc.exact {
				t.Errorf("IsExact() = %v, want %v", m.IsExact(), tc.exact)
			}
			if m.String() != tc.path {
				t.Errorf("String() = %q, want %q as written", m.String(), tc.path)
			}
			for _, p := range tc.match {
				if !m.Matches(p) {
					t.Errorf("%q should match %q", tc.path, p)
				}
			}
			for _, p := range tc.noMatch {
				if m.Matches(p) {
					t.Errorf("%q should not match %q", tc.path, p)
				}
			}
		})
	}
}

// TestPathMatchersAgreeWithNormalizePath checks the point of canonicalizing
// policy paths with NormalizePath's rules: however a client spells the path,
// the rule written in its natural form matches it.
func TestPathMatchersAgreeWithNormalizePath(t *testing.T) {
	tests := []struct {
		rule     string
		requests []string
	}{
		{"/Login", []string{"/login", "/LOGIN", "/%4cogin", "//login", "/login;jsessionid=x", "/x/../login", "/login."}},
		{"/my docs/Read Me.txt", []string{"/my%20docs/read%20me.txt", "/My%20Docs/READ%20ME.TXT", "/my%20docs%20/read%20me.txt."}},
		{"/caf\xc3\xa9", []string{"/caf%C3%A9", "/caf%c3%a9", "/CAF\xc3\xa9"}},
	}
	for _, tc := range tests {
		exact, err := ExactPath(tc.rule)
		if err != nil {
			t.Fatalf("ExactPath(%q): %v", tc.rule, err)
		}
		prefix, err := PathPrefix(tc.rule)
		if err != nil {
			t.Fatalf("PathPrefix(%q): %v", tc.rule, err)
		}
		for _, req := range tc.requests {
			n, err := NormalizePath(req)
			if err != nil {
				t.Errorf("NormalizePath(%q): %v", req, err)
				continue
			}
			if !exact.Matches(n) {
				t.Errorf("ExactPath(%q) does not match NormalizePath(%q) = %q", tc.rule, req, n)
			}
			if !prefix.Matches(n) || !prefix.Matches(n+"/sub") {
				t.Errorf("PathPrefix(%q) does not match NormalizePath(%q) = %q (or below it)", tc.rule, req, n)
			}
		}
	}
}

func TestPathMatcherZeroValueMatchesNothing(t *testing.T) {
	var m PathMatcher
	for _, p := range []string{"", "/", "/a"} {
		if m.Matches(p) {
			t.Errorf("zero PathMatcher matches %q", p)
		}
	}
	if m.IsExact() {
		t.Error("zero PathMatcher claims to be exact")
	}
}

func TestPathMatcherMatchesDoesNotAllocate(t *testing.T) {
	prefix, _ := PathPrefix("/api/v1/")
	exact, _ := ExactPath("/api/v1/users")
	paths := []string{"/api/v1/users", "/api/v10", "/other"}
	matched := 0
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range paths {
			if prefix.Matches(p) {
				matched++
			}
			if exact.Matches(p) {
				matched++
			}
		}
	})
	if matched == 0 {
		t.Error("nothing matched")
	}
	if allocs != 0 {
		t.Errorf("Matches allocates %v times per run, want 0", allocs)
	}
}

func TestNormalizePathCanonicalDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := NormalizePath("/api/v1/users/12345/profile"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("NormalizePath of a canonical path allocates %v times, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := NormalizePath("/API//v1/./users/%41/../x;p=1"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("NormalizePath of a short non-canonical path allocates %v times, want at most 1", allocs)
	}
}

func TestMethodSet(t *testing.T) {
	tests := map[string]struct {
		methods    []string
		wantErr    string
		wantString string
		match      []string
		noMatch    []string
	}{
		"nil matches all": {
			methods: nil, wantString: "*",
			match: []string{"GET", "POST", "DELETE", "BREW", "get", ""},
		},
		"empty matches all": {
			methods: []string{}, wantString: "*",
			match: []string{"GET", "PATCH"},
		},
		"get": {
			methods: []string{"GET"}, wantString: "GET",
			match:   []string{"GET", "get", "Get", "HEAD", "head"},
			noMatch: []string{"POST", "GETS", "GE", "", "OPTIONS"},
		},
		"lower-case input": {
			methods: []string{"post", "Put"}, wantString: "POST,PUT",
			match:   []string{"POST", "put", "pUt"},
			noMatch: []string{"GET", "HEAD", "PATCH"},
		},
		"head alone does not add get": {
			methods: []string{"HEAD"}, wantString: "HEAD",
			match:   []string{"HEAD"},
			noMatch: []string{"GET"},
		},
		"duplicates removed": {
			methods: []string{"GET", "get", "POST", "GET"}, wantString: "GET,POST",
			match: []string{"GET", "POST", "HEAD"},
		},
		"extension method": {
			methods: []string{"PROPFIND", "M-SEARCH"}, wantString: "PROPFIND,M-SEARCH",
			match:   []string{"propfind", "M-SEARCH"},
			noMatch: []string{"MKCOL"},
		},
		"no unicode folding": {
			methods: []string{"POST"}, wantString: "POST",
			match:   []string{"POST"},
			noMatch: []string{"PO\xc5\xbfT", "\xe2\x84\xaaEY"},
		},
		"empty name":   {methods: []string{"GET", ""}, wantErr: "index 1 is empty"},
		"space":        {methods: []string{"G T"}, wantErr: "' '"},
		"slash":        {methods: []string{"GET/1"}, wantErr: "'/'"},
		"non-ASCII":    {methods: []string{"G\xc3\x89T"}, wantErr: "not allowed"},
		"control":      {methods: []string{"GET\r\n"}, wantErr: "not allowed"},
		"comma":        {methods: []string{"GET,POST"}, wantErr: "','"},
		"long bad one": {methods: []string{strings.Repeat("A", 300) + " "}, wantErr: `"...`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := NewMethodSet(tc.methods)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewMethodSet(%q) = %v; want error containing %q", tc.methods, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewMethodSet(%q): %v", tc.methods, err)
			}
			if s.String() != tc.wantString {
				t.Errorf("String() = %q, want %q", s.String(), tc.wantString)
			}
			for _, m := range tc.match {
				if !s.Matches(m) {
					t.Errorf("%v should match %q", s, m)
				}
			}
			for _, m := range tc.noMatch {
				if s.Matches(m) {
					t.Errorf("%v should not match %q", s, m)
				}
			}
		})
	}
}

func TestMethodSetZeroValueMatchesAll(t *testing.T) {
	var s MethodSet
	if !s.Matches("DELETE") {
		t.Error("zero MethodSet should match every method")
	}
}

func TestMethodSetMatchesDoesNotAllocate(t *testing.T) {
	s, err := NewMethodSet([]string{"GET", "POST"})
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		s.Matches("head")
		s.Matches("DELETE")
	})
	if allocs != 0 {
		t.Errorf("Matches allocates %v times per run, want 0", allocs)
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"canonical", "/api/v1/users/12345/profile"},
		{"case and slashes", "/API//v1/Users/12345/Profile"},
		{"dot segments and params", "/static/../api/./v1;jsessionid=abc/users/%41bc"},
		{"long encoded", "/files/" + strings.Repeat("caf%C3%A9%20", 40)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(bc.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPathPrefixMatches(b *testing.B) {
	m, err := PathPrefix("/api/v1/")
	if err != nil {
		b.Fatal(err)
	}
	paths := []string{"/api/v1/users/12345", "/api/v10/users", "/static/app.js", "/api/v1"}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			m.Matches(p)
		}
	}
}

// TestSplitRequestURIErrorsLeaveTheQueryOut: refused request-targets are logged by the adapters;
// their query or fragment may hold a token.
func TestSplitRequestURIErrorsLeaveTheQueryOut(t *testing.T) {
	for _, in := range []string{"/a?access_token=s3cret#x", "/a#access_token=s3cret", "https://h/p?access_token=s3cret"} {
		_, _, err := SplitRequestURI(in)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("SplitRequestURI(%q): %v, want an error that leaves the query out", in, err)
		}
	}
}

// TestHostErrorsQuoteTheInputOnce: an error about a hostile host quotes it once, truncated.
// FuzzParseHostPattern found invalid IPv6 addresses quoted twice, by the caller and by normIPv6.
func TestHostErrorsQuoteTheInputOnce(t *testing.T) {
	long := strings.Repeat("1:", 80)
	tests := map[string]func() error{
		"NormalizeHost, bracketed IPv6": func() error { _, err := NormalizeHost("[" + long + "]"); return err },
		"NormalizeHost, bare IPv6":      func() error { _, err := NormalizeHost(long); return err },
		"ParseHostPattern, IPv6":        func() error { _, err := ParseHostPattern(long); return err },
	}
	for name, parse := range tests {
		t.Run(name, func(t *testing.T) {
			if err := parse(); err == nil || !strings.Contains(err.Error(), "invalid IPv6 address") || len(err.Error()) > normMaxQuoted+100 {
				t.Errorf("error %q: want the input quoted once, truncated", err)
			}
		})
	}
}
