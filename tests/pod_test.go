package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/appc/spec/schema"

	"rkt.dev/rkt/tests/testutil"
)

// TestPrepareRunPrepared: prepare prints the UUID of a prepared pod, which
// run-prepared then runs once.
func TestPrepareRunPrepared(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	uuidFile := c.UUIDFile()
	r := c.RunOK(flyRunArgs(c, "prepare", uuidFile, c.Image("inspector"), "--", "--print-msg=prepared-ran", "--exit-code=4")...)
	uuid := strings.TrimSpace(r.Stdout)
	if !uuidRx.MatchString(uuid) {
		t.Fatalf("rkt prepare printed %q, want a UUID", r.Stdout)
	}
	if saved := c.ReadUUID(uuidFile); saved != uuid {
		t.Errorf("--uuid-file-save wrote %q, prepare printed %q", saved, uuid)
	}
	st := c.Status(uuid)
	if st["state"] != "prepared" || st["exited"] != "false" {
		t.Errorf("status of a prepared pod: %v", st)
	}
	if want := []string{"prepared/" + uuid}; !slices.Equal(c.PodEntries(), want) {
		t.Errorf("pod directories %q, want %q", c.PodEntries(), want)
	}

	r = c.Run("run-prepared", uuid)
	if r.ExitCode != 4 || !testutil.HasLine(r.Stdout, "prepared-ran") {
		t.Errorf("run-prepared: want the app's output and exit code 4, got %v", r)
	}
	if st := c.Status(uuid); st["state"] != "exited" || st["app-inspector"] != "4" {
		t.Errorf("status after run-prepared: %v", st)
	}
	r = c.Run("run-prepared", uuid)
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "not prepared") {
		t.Errorf("running a pod twice: want 254 saying it is not prepared, got %v", r)
	}
}

// TestRun: rkt run runs the app and passes its output and exit code
// through; the pod is then exited.
func TestRun(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	r, uuid := flyRun(c, c.Image("inspector"), "--", "--print-msg=hello", "--exit-code=7")
	if r.ExitCode != 7 || !testutil.HasLine(r.Stdout, "hello") {
		t.Errorf("want output hello and exit code 7, got %v", r)
	}
	if want := []string{"run/" + uuid}; !slices.Equal(c.PodEntries(), want) {
		t.Errorf("pod directories %q, want %q", c.PodEntries(), want)
	}
}

// listHeader is `rkt list`'s header, without and with --full.
var (
	listHeader     = []string{"UUID", "APP", "IMAGE NAME", "STATE", "CREATED", "STARTED", "NETWORKS"}
	listHeaderFull = []string{"UUID", "APP", "IMAGE NAME", "IMAGE ID", "STATE", "CREATED", "STARTED", "NETWORKS"}
)

// TestList lists a two-app exited pod and a running pod as a table
// (short, --full, --no-legend) and as JSON.
func TestList(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	img := c.Image("inspector")
	_, exited := flyRun(c, img, "--name=first", "--", "--exit-code=0", "---", img, "--name=second", "--", "--exit-code=2")
	p, running := flySleeper(c)
	defer func() {
		c.RunOK("stop", "--force", running)
		p.Wait()
	}()
	imageID := c.Fetch(img)

	t.Run("table", func(t *testing.T) {
		c := c.For(t)
		out := c.RunOK("list").Stdout
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(listHeader, " ") {
			t.Errorf("header %q, want %q", lines[0], listHeader)
		}
		// A pod's first row starts with its short UUID; further apps have
		// continuation rows starting with the app name.
		wantRows := []*regexp.Regexp{
			regexp.MustCompile(`^` + exited[:8] + `\s+first\s+rkt.dev/examples/inspector\s+exited\s+\S`),
			regexp.MustCompile(`^\s+second\s+rkt.dev/examples/inspector\s*$`),
			regexp.MustCompile(`^` + running[:8] + `\s+inspector\s+rkt.dev/examples/inspector\s+running\s+\S`),
		}
		for _, rx := range wantRows {
			if !slices.ContainsFunc(lines[1:], rx.MatchString) {
				t.Errorf("no row matches %s in:\n%s", rx, out)
			}
		}
		if len(lines) != 4 {
			t.Errorf("want a header and 3 rows, got:\n%s", out)
		}
		if strings.Contains(out, exited) {
			t.Errorf("the short listing should not show full UUIDs:\n%s", out)
		}
	})
	t.Run("full", func(t *testing.T) {
		c := c.For(t)
		out := c.RunOK("list", "--full").Stdout
		rows := tableRows(out)
		if !slices.Equal(rows[0], listHeaderFull) {
			t.Errorf("header %q, want %q", rows[0], listHeaderFull)
		}
		for _, uuid := range []string{exited, running} {
			rx := regexp.MustCompile(`(?m)^` + uuid + `\s+\S+\s+rkt.dev/examples/inspector\s+` + imageID + `\s+(exited|running)\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
			if !rx.MatchString(out) {
				t.Errorf("no row with the full UUID %s, image ID and absolute time:\n%s", uuid, out)
			}
		}
	})
	t.Run("no legend", func(t *testing.T) {
		c := c.For(t)
		out := c.RunOK("list", "--no-legend").Stdout
		if strings.Contains(out, "UUID") || len(strings.Split(strings.TrimRight(out, "\n"), "\n")) != 3 {
			t.Errorf("want 3 rows and no header:\n%s", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		c := c.For(t)
		var pods []jsonPod
		decodeJSON(t, c.RunOK("list", "--format=json").Stdout, &pods)
		byName := map[string]jsonPod{}
		for _, p := range pods {
			byName[p.Name] = p
		}
		if len(pods) != 2 {
			t.Fatalf("want 2 pods, got %+v", pods)
		}
		e := byName[exited]
		if e.State != "exited" || !slices.Equal(e.AppNames, []string{"first", "second"}) || len(e.Apps) != 2 ||
			e.Apps[1].ExitCode == nil || *e.Apps[1].ExitCode != 2 || e.Apps[0].ImageID != imageID || e.CreatedAt == 0 || e.StartedAt == 0 {
			t.Errorf("exited pod: %+v", e)
		}
		if r := byName[running]; r.State != "running" || len(r.Apps) != 1 || r.Apps[0].ExitCode != nil {
			t.Errorf("running pod: %+v", r)
		}
	})
}

// TestStatus prints key=value lines and JSON for running and exited pods.
func TestStatus(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	p, uuid := flySleeper(c)
	timeRx := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [+-]\d{4} \S+$`)

	st := c.Status(uuid)
	if st["state"] != "running" || st["exited"] != "false" || st["pid"] == "" || !timeRx.MatchString(st["created"]) || !timeRx.MatchString(st["started"]) {
		t.Errorf("status of a running pod: %v", st)
	}
	if _, ok := st["app-inspector"]; ok {
		t.Errorf("a running pod has no app exit code yet: %v", st)
	}
	c.RunOK("stop", uuid)
	p.Wait()

	out := c.RunOK("status", uuid).Stdout
	st = testutil.ParseKV(out)
	for _, key := range []string{"state", "created", "started", "networks", "exited", "app-inspector"} {
		if _, ok := st[key]; !ok {
			t.Errorf("no %s= line in:\n%s", key, out)
		}
	}
	if st["state"] != "exited" || st["exited"] != "true" || st["app-inspector"] != "143" {
		t.Errorf("status of the stopped pod:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, "=") {
			t.Errorf("not a key=value line: %q", line)
		}
	}

	var jp jsonPod
	decodeJSON(t, c.RunOK("status", "--format=json", uuid).Stdout, &jp)
	if jp.Name != uuid || jp.State != "exited" || len(jp.Apps) != 1 || jp.Apps[0].ExitCode == nil || *jp.Apps[0].ExitCode != 143 {
		t.Errorf("status --format=json: %+v", jp)
	}
}

// TestCatManifest prints the pod manifest with the app and its arguments.
func TestCatManifest(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	uuid := flyPrepare(t, c, "--print-msg=in-manifest")
	for _, args := range [][]string{{"cat-manifest", uuid}, {"cat-manifest", "--pretty-print=false", uuid[:8]}} {
		var pm schema.PodManifest
		decodeJSON(t, c.RunOK(args...).Stdout, &pm)
		if len(pm.Apps) != 1 || pm.Apps[0].Name != "inspector" || !slices.Contains(pm.Apps[0].App.Exec, "--print-msg=in-manifest") {
			t.Errorf("rkt %q: unexpected manifest %+v", args, pm)
		}
	}
}

// TestUUIDFile: --uuid-file-save writes the UUID that status,
// cat-manifest, stop and rm then take with --uuid-file.
func TestUUIDFile(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	f := c.UUIDFile()
	p := c.Start(flyRunArgs(c, "run", f, c.Image("inspector"), "--", "--sleep=1h")...)
	p.Expect("sleeping=")
	uuid := c.ReadUUID(f)
	if !uuidRx.MatchString(uuid) {
		t.Fatalf("--uuid-file-save wrote %q", uuid)
	}
	c.WaitPID(uuid)
	if st := testutil.ParseKV(c.RunOK("status", "--uuid-file="+f).Stdout); st["state"] != "running" {
		t.Errorf("status --uuid-file: %v", st)
	}
	var pm schema.PodManifest
	decodeJSON(t, c.RunOK("cat-manifest", "--uuid-file="+f).Stdout, &pm)
	if len(pm.Apps) != 1 {
		t.Errorf("cat-manifest --uuid-file: %+v", pm)
	}
	c.RunOK("stop", "--uuid-file="+f)
	if r := p.Wait(); r.ExitCode != 143 {
		t.Errorf("rkt run after stop --uuid-file: %v", r)
	}
	c.RunOK("rm", "--uuid-file="+f)
	if entries := c.PodEntries(); len(entries) != 0 {
		t.Errorf("rm --uuid-file left %q", entries)
	}
	if r := c.Run("status", "--uuid-file="+f, uuid); r.ExitCode != 254 {
		t.Errorf("a UUID and --uuid-file together: want 254, got %v", r)
	}
}

// TestStop stops running pods, gracefully and by force, and refuses pods
// that are not running.
func TestStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"graceful", nil, "143"},
		{"force", []string{"--force"}, "137"},
	}
	c := flyCtx(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c.For(t)
			p, uuid := flySleeper(c)
			r := c.RunOK(append(append([]string{"stop"}, tt.flags...), uuid)...)
			if !strings.Contains(r.Stdout, uuid) {
				t.Errorf("stop should name the pod: %v", r)
			}
			p.Wait()
			if st := c.Status(uuid); st["state"] != "exited" || st["app-inspector"] != tt.want {
				t.Errorf("after stop: %v, want exited with app-inspector=%s", st, tt.want)
			}
			if r := c.Run("stop", uuid); r.ExitCode != 254 || !strings.Contains(r.Stderr, "not running") {
				t.Errorf("stopping it again: want 254 and 'not running', got %v", r)
			}
		})
	}
}

// TestStopFailureIsOneLine: when the stage1 stop entrypoint refuses (here
// a pid file that names another process), rkt reports the stage1's reason
// in its own single error line, without the stage1's prefix.
func TestStopFailureIsOneLine(t *testing.T) {
	c := flyCtx(t)
	p, uuid := flySleeper(c)
	defer func() {
		c.RunOK("stop", "--force", uuid)
		p.Wait()
	}()
	pidFile := filepath.Join(c.DataDir(), "pods", "run", uuid, "pid")
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.Run("stop", uuid)
	if err := os.WriteFile(pidFile, pid, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	if r.ExitCode != 254 || len(lines) != 1 || !strings.HasPrefix(lines[0], "rkt: stopping pod "+uuid+": ") ||
		!strings.Contains(lines[0], "is not its stage1") || strings.Contains(r.Stderr, "stage1-fly:") {
		t.Errorf("want one rkt line with the stage1's reason, got %v", r)
	}
}

// TestRm removes exited and prepared pods, and refuses running ones.
func TestRm(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	exited := flyRunInspector(t, c, 0)
	prepared := flyPrepare(t, c)
	p, running := flySleeper(c)

	r := c.Run("rm", running)
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "stop") {
		t.Errorf("rm of a running pod: want 254 suggesting rkt stop, got %v", r)
	}
	r = c.RunOK("rm", exited, prepared)
	for _, uuid := range []string{exited, prepared} {
		if !strings.Contains(r.Stdout, uuid) {
			t.Errorf("rm should name %s: %v", uuid, r)
		}
	}
	if want := []string{"run/" + running}; !slices.Equal(c.PodEntries(), want) {
		t.Errorf("pod directories %q, want %q", c.PodEntries(), want)
	}
	c.RunOK("stop", "--force", running)
	p.Wait()
	c.RunOK("rm", running)
	if left := c.Leftovers(); len(left) != 0 {
		t.Errorf("after rm of every pod:\n%s", strings.Join(left, "\n"))
	}
}

// TestGC: gc marks exited pods and deletes them after the grace period;
// prepared pods are deleted after --expire-prepared; running pods stay.
func TestGC(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	exited := flyRunInspector(t, c, 0)
	prepared := flyPrepare(t, c)
	p, running := flySleeper(c)
	defer func() {
		c.RunOK("stop", "--force", running)
		p.Wait()
	}()

	steps := []struct {
		args []string
		want []string
	}{
		{[]string{"gc", "--mark-only"}, []string{"exited-garbage/" + exited, "prepared/" + prepared, "run/" + running}},
		{[]string{"gc"}, []string{"exited-garbage/" + exited, "prepared/" + prepared, "run/" + running}},
		{[]string{"gc", "--grace-period=0s"}, []string{"prepared/" + prepared, "run/" + running}},
		{[]string{"gc", "--grace-period=0s", "--expire-prepared=0s"}, []string{"run/" + running}},
	}
	for _, s := range steps {
		c.RunOK(s.args...)
		if got := c.PodEntries(); !slices.Equal(got, s.want) {
			t.Fatalf("after rkt %q: pods %q, want %q", s.args, got, s.want)
		}
	}
	if st := c.Status(running); st["state"] != "running" {
		t.Errorf("gc touched a running pod: %v", st)
	}
}

// TestEnter runs commands in a running pod, and refuses pods that are not
// running.
func TestEnter(t *testing.T) {
	t.Parallel()
	c := flyCtx(t)
	p, uuid := flySleeper(c)
	r := c.Run("enter", uuid, "/bin/sh", "-c", "echo entered; exit 5")
	if r.ExitCode != 5 || !testutil.HasLine(r.Stdout, "entered") {
		t.Errorf("enter: want output 'entered' and exit code 5, got %v", r)
	}
	r = c.Run("enter", "--app=nosuchapp", uuid, "/bin/true")
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "nosuchapp") {
		t.Errorf("enter --app=nosuchapp: want 254 naming the app, got %v", r)
	}
	c.RunOK("stop", uuid)
	p.Wait()
	r = c.Run("enter", uuid, "/bin/true")
	if r.ExitCode != 254 || !strings.Contains(r.Stderr, "running") {
		t.Errorf("enter into an exited pod: want 254, got %v", r)
	}
}

// TestVersion prints rkt's, appc's and Go's versions.
func TestVersion(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	out := c.RunOK("version").Stdout
	for _, rx := range []string{`(?m)^rkt Version: \S+$`, `(?m)^appc Version: 0\.8\.\d+$`, `(?m)^Go Version: go\d`, `(?m)^Go OS/Arch: linux/\w+$`} {
		if !regexp.MustCompile(rx).MatchString(out) {
			t.Errorf("no line matching %s in:\n%s", rx, out)
		}
	}
}

// TestConfig: rkt config prints the configuration merged from the
// system, local and user directories, later ones overriding earlier ones
// field by field.
func TestConfig(t *testing.T) {
	t.Parallel()
	c := testutil.New(t)
	write := func(dir, kind, name, content string) {
		t.Helper()
		d := filepath.Join(dir, kind+".d")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(c.SystemConfigDir(), "stage1", "stage1.json",
		`{"rktKind":"stage1","rktVersion":"v1","name":"example.com/system-stage1","version":"1.0","location":"/system/stage1.aci"}`)
	write(c.LocalConfigDir(), "stage1", "stage1.json",
		`{"rktKind":"stage1","rktVersion":"v1","location":"/local/stage1.aci"}`)
	write(c.LocalConfigDir(), "paths", "paths.json",
		`{"rktKind":"paths","rktVersion":"v1","data":"/local/data","stage1-images":"/local/stage1-images"}`)
	write(c.UserConfigDir(), "paths", "paths.json",
		`{"rktKind":"paths","rktVersion":"v1","stage1-images":"/user/stage1-images"}`)

	var cfg struct {
		Paths  map[string]string `json:"paths"`
		Stage1 map[string]string `json:"stage1"`
	}
	decodeJSON(t, c.RunOK("config").Stdout, &cfg)
	want := map[string]map[string]string{
		"paths":  {"data": "/local/data", "stage1-images": "/user/stage1-images"},
		"stage1": {"name": "example.com/system-stage1", "version": "1.0", "location": "/local/stage1.aci"},
	}
	for key, got := range map[string]map[string]string{"paths": cfg.Paths, "stage1": cfg.Stage1} {
		for k, v := range want[key] {
			if got[k] != v {
				t.Errorf("%s.%s = %q, want %q (config %+v)", key, k, got[k], v, cfg)
			}
		}
	}
	decodeJSON(t, c.RunOK("config", "--pretty-print").Stdout, &cfg)

	write(c.LocalConfigDir(), "paths", "broken.json", `{"rktKind":"stage1","rktVersion":"v1"}`)
	if r := c.Run("config"); r.ExitCode != 254 || !strings.Contains(r.Stderr, "broken.json") {
		t.Errorf("a misplaced config file: want 254 naming it, got %v", r)
	}
}
