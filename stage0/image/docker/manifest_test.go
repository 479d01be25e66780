package docker

import (
	"testing"
)

func TestResolveUser(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\n# comment\nwww:x:33:34::/var/www:/bin/false\nbad:x:notanumber:1::/:\n")
	group := []byte("root:x:0:\nwww-data:x:34:\nstaff:x:50:www\n")
	tests := []struct{ spec, user, group string }{
		{"", "0", "0"},
		{"root", "0", "0"},
		{"www", "33", "34"},
		{"33", "33", "34"},
		{"1000", "1000", "0"},
		{"www:staff", "33", "50"},
		{"www:7", "33", "7"},
		{"1000:1000", "1000", "1000"},
		{"www:", "33", "34"},
		{"nobody", "nobody", "0"},
		{"www:nogroup", "33", "nogroup"},
		{"bad", "bad", "0"},
	}
	for _, tc := range tests {
		u, g := resolveUser(tc.spec, passwd, group)
		if u != tc.user || g != tc.group {
			t.Errorf("resolveUser(%q) = %s:%s, want %s:%s", tc.spec, u, g, tc.user, tc.group)
		}
	}
	// Without the files, numbers pass and names stay names.
	if u, g := resolveUser("app:app", nil, nil); u != "app" || g != "app" {
		t.Errorf("without /etc/passwd: %s:%s", u, g)
	}
}

func TestImageName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"index.docker.io/library/busybox", "index.docker.io/library/busybox"},
		{"127.0.0.1:5000/library/busybox", "127.0.0.1-5000/library/busybox"},
		{"Registry.Example/Team_A/app", "registry.example/team-a/app"},
		{"oci-layout/my layout", "oci-layout/my-layout"},
	}
	for _, tc := range tests {
		got, err := imageName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("imageName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSource(t *testing.T) {
	tests := []struct {
		ref        string
		kind       Kind
		name, path string
		tag        string
		bad        bool
	}{
		{ref: "docker://busybox", kind: Registry, name: "index.docker.io/library/busybox:latest"},
		{ref: "docker://127.0.0.1:5000/library/busybox:1.36", kind: Registry, name: "127.0.0.1:5000/library/busybox:1.36"},
		{ref: "docker://quay.io/a/b@sha256:" + sixtyFour, kind: Registry, name: "quay.io/a/b@sha256:" + sixtyFour},
		{ref: "oci-layout:/srv/oci:v1", kind: OCILayout, path: "/srv/oci", tag: "v1"},
		{ref: "oci-layout:/srv/oci", kind: OCILayout, path: "/srv/oci"},
		{ref: "docker-archive:/tmp/app.tar", kind: DockerArchive, path: "/tmp/app.tar"},
		{ref: "docker://UPPER/case", bad: true},
		{ref: "oci-layout:", bad: true},
		{ref: "https://example.com/x.aci", bad: true},
	}
	for _, tc := range tests {
		src, err := ParseSource(tc.ref, false)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseSource(%q) accepted a bad reference", tc.ref)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSource(%q): %v", tc.ref, err)
			continue
		}
		name := ""
		if src.Ref != nil {
			name = src.Ref.Name()
		}
		if src.Kind != tc.kind || name != tc.name || src.Path != tc.path || src.Tag != tc.tag {
			t.Errorf("ParseSource(%q) = kind %d name %q path %q tag %q", tc.ref, src.Kind, name, src.Path, src.Tag)
		}
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
