// Package tests holds rkt's functional tests: black-box tests that drive
// the built rkt binary (build/bin/rkt) against the example images, through
// the harness in tests/testutil. Pods here use the fly stage1, the one that
// runs quickest; the stage1 conformance suite (stage1/testsuite) covers
// what each flavor must do.
package tests

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"rkt.dev/rkt/tests/testutil"
)

// flyCtx is a fresh rkt installation for tests that run pods.
func flyCtx(t *testing.T) *testutil.Ctx {
	t.Helper()
	testutil.RequireRoot(t)
	return testutil.New(t)
}

// flyRunArgs is a `rkt CMD` command line (run or prepare) with the fly
// stage1, unsigned images allowed and the UUID saved to uuidFile, followed
// by args.
func flyRunArgs(c *testutil.Ctx, cmd, uuidFile string, args ...string) []string {
	a := []string{cmd, "--insecure-options=image", "--stage1-path=" + c.Stage1("fly")}
	if uuidFile != "" {
		a = append(a, "--uuid-file-save="+uuidFile)
	}
	return append(a, args...)
}

// flyRun runs a pod to its end and returns rkt's result and the pod UUID.
func flyRun(c *testutil.Ctx, args ...string) (testutil.Result, string) {
	f := c.UUIDFile()
	r := c.Run(flyRunArgs(c, "run", f, args...)...)
	return r, c.ReadUUID(f)
}

// flyRunInspector runs the inspector with appArgs, failing the test unless
// the pod exits with want, and returns the pod's UUID.
func flyRunInspector(t *testing.T, c *testutil.Ctx, want int, appArgs ...string) string {
	t.Helper()
	r, uuid := flyRun(c, append([]string{c.Image("inspector"), "--"}, appArgs...)...)
	if r.ExitCode != want {
		t.Fatalf("rkt run: want exit code %d, got %v", want, r)
	}
	return uuid
}

// flySleeper starts an inspector pod that sleeps until stopped and returns
// once it sleeps and shows its pid (which stop and enter need).
func flySleeper(c *testutil.Ctx) (*testutil.Process, string) {
	f := c.UUIDFile()
	p := c.Start(flyRunArgs(c, "run", f, c.Image("inspector"), "--", "--sleep=1h")...)
	p.Expect(`sleeping=`)
	uuid := c.ReadUUID(f)
	c.WaitPID(uuid)
	return p, uuid
}

// flyPrepare prepares an inspector pod and returns its UUID as printed.
func flyPrepare(t *testing.T, c *testutil.Ctx, appArgs ...string) string {
	t.Helper()
	r := c.RunOK(flyRunArgs(c, "prepare", "", append([]string{c.Image("inspector"), "--"}, appArgs...)...)...)
	uuid := strings.TrimSpace(r.Stdout)
	if !uuidRx.MatchString(uuid) {
		t.Fatalf("rkt prepare printed %q, want a UUID", r.Stdout)
	}
	return uuid
}

// uuidRx matches one pod UUID and nothing else.
var uuidRx = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// imageIDRx matches one image ID and nothing else.
var imageIDRx = regexp.MustCompile(`^sha512-[0-9a-f]{128}$`)

// decodeJSON decodes rkt's JSON output into v, failing the test if it is
// not valid.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("invalid JSON output: %v\n%s", err, out)
	}
}

// jsonImage is an image in `rkt image list --format=json`.
type jsonImage struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ImportTime   int64  `json:"import_time"`
	LastUsedTime int64  `json:"last_used_time"`
	Size         int64  `json:"size"`
}

// imageList returns `rkt image list --format=json`.
func imageList(t *testing.T, c *testutil.Ctx) []jsonImage {
	t.Helper()
	var ims []jsonImage
	decodeJSON(t, c.RunOK("image", "list", "--format=json").Stdout, &ims)
	return ims
}

// jsonPod is a pod in `rkt list --format=json` and `rkt status
// --format=json`.
type jsonPod struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	AppNames  []string  `json:"app_names"`
	Apps      []jsonApp `json:"apps"`
	CreatedAt int64     `json:"created_at"`
	StartedAt int64     `json:"started_at"`
}

// jsonApp is an app of a jsonPod.
type jsonApp struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	ImageID  string `json:"image_id"`
	ExitCode *int   `json:"exit_code"`
}

// tableRows splits a table rkt printed into rows of fields separated by
// two or more spaces (single spaces occur inside headers and values).
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1))
	}
	return rows
}
