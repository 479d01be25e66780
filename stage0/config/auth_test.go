package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes files (name → content) into dir/auth.d.
func writeConfig(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	d := filepath.Join(dir, "auth.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuthLoad(t *testing.T) {
	system, local := t.TempDir(), t.TempDir()
	writeConfig(t, system, map[string]string{
		"docker.json": `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["docker.io","quay.io"],"credentials":{"user":"sys","password":"s"}}`,
		"http.json":   `{"rktKind":"auth","rktVersion":"v1","domains":["example.com"],"type":"basic","credentials":{"user":"u","password":"p"}}`,
	})
	writeConfig(t, local, map[string]string{
		"quay.json":  `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["quay.io"],"credentials":{"user":"local","password":"l"}}`,
		"oauth.json": `{"rktKind":"auth","rktVersion":"v1","domains":["Other.example"],"type":"oauth","credentials":{"token":"tok"}}`,
	})
	c, err := Load(Dirs{System: system, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ registry, user string }{
		{"index.docker.io", "sys"}, {"registry-1.docker.io", "sys"}, {"quay.io", "local"}, {"gcr.io", ""},
	} {
		got, ok := c.Auth.ForRegistry(tc.registry)
		if got.User != tc.user || ok != (tc.user != "") {
			t.Errorf("ForRegistry(%s) = %+v, %v; want user %q", tc.registry, got, ok, tc.user)
		}
	}
	for _, tc := range []struct{ host, header string }{
		{"example.com", "Basic dTpw"},
		{"example.com:8443", "Basic dTpw"},
		{"other.example", "Bearer tok"},
		{"nothere.example", ""},
	} {
		got, ok := c.Auth.ForHost(tc.host)
		if ok != (tc.header != "") || (ok && got.Header() != tc.header) {
			t.Errorf("ForHost(%s) = %q, %v; want %q", tc.host, got.Header(), ok, tc.header)
		}
	}
}

func TestAuthLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"wrong kind", map[string]string{"a.json": `{"rktKind":"paths","rktVersion":"v1"}`}, `rktKind "paths" does not belong`},
		{"wrong version", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v2"}`}, "unsupported rktVersion"},
		{"aws", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v1","domains":["x"],"type":"aws"}`}, `unsupported auth type "aws"`},
		{"basic without user", map[string]string{"a.json": `{"rktKind":"auth","rktVersion":"v1","domains":["x"],"type":"basic"}`}, "needs credentials.user"},
		{"no registries", map[string]string{"a.json": `{"rktKind":"dockerAuth","rktVersion":"v1","credentials":{"user":"u"}}`}, "no registries"},
		{"registry twice", map[string]string{
			"a.json": `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["quay.io"],"credentials":{"user":"u"}}`,
			"b.json": `{"rktKind":"dockerAuth","rktVersion":"v1","registries":["QUAY.io"],"credentials":{"user":"v"}}`,
		}, "also configured in"},
		{"bad JSON", map[string]string{"a.json": `{`}, "invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, tc.files)
			_, err := Load(Dirs{Local: dir})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "auth.d") {
				t.Errorf("error = %v; want one naming the file and containing %q", err, tc.want)
			}
		})
	}
}
