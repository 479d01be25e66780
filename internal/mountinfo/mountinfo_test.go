package mountinfo

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Mount
		wantErr bool
	}{
		{
			name: "proc(5) example with one optional field",
			in:   "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
			want: []Mount{{ID: 36, Parent: 35, Root: "/mnt1", MountPoint: "/mnt2",
				Options: []string{"rw", "noatime"}, FSType: "ext3", Source: "/dev/root",
				SuperOptions: []string{"rw", "errors=continue"}}},
		},
		{
			name: "no optional fields, cgroup v1 controllers, blank line skipped",
			in:   "31 30 0:28 / /sys/fs/cgroup/cpu ro,relatime - cgroup cgroup rw,cpu,cpuacct\n\n",
			want: []Mount{{ID: 31, Parent: 30, Root: "/", MountPoint: "/sys/fs/cgroup/cpu",
				Options: []string{"ro", "relatime"}, FSType: "cgroup", Source: "cgroup",
				SuperOptions: []string{"rw", "cpu", "cpuacct"}}},
		},
		{
			name: "several optional fields and escaped paths",
			in:   `50 22 0:40 /a\134b /tmp/with\040space\011tab rw shared:5 master:2 propagate_from:1 - tmpfs my\040src rw` + "\n",
			want: []Mount{{ID: 50, Parent: 22, Root: `/a\b`, MountPoint: "/tmp/with space\ttab",
				Options: []string{"rw"}, FSType: "tmpfs", Source: "my src", SuperOptions: []string{"rw"}}},
		},
		{name: "missing separator", in: "36 35 98:0 / /mnt rw ext3 /dev/root rw\n", wantErr: true},
		{name: "truncated after separator", in: "36 35 98:0 / /mnt rw - ext3\n", wantErr: true},
		{name: "non-numeric ID", in: "x 35 98:0 / /mnt rw - ext3 /dev/root rw\n", wantErr: true},
		{name: "non-numeric parent", in: "36 y 98:0 / /mnt rw - ext3 /dev/root rw\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse() error = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `plain`},
		{`a\040b`, `a b`},
		{`trailing\04`, `trailing\04`},
		{`not\9octal`, `not\9octal`},
		{`\134\040`, `\ `},
	}
	for _, tt := range tests {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadOnly(t *testing.T) {
	tests := []struct {
		opts []string
		want bool
	}{
		{[]string{"ro", "relatime"}, true},
		{[]string{"rw", "nosuid"}, false},
		{[]string{"rw", "errors=ro"}, false},
	}
	for _, tt := range tests {
		if got := (Mount{Options: tt.opts}).ReadOnly(); got != tt.want {
			t.Errorf("ReadOnly(%v) = %v, want %v", tt.opts, got, tt.want)
		}
	}
}

func TestSelf(t *testing.T) {
	mounts, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.MountPoint == "/" {
			return
		}
	}
	t.Errorf("Self() has no root mount: %+v", mounts)
}
