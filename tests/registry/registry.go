// Package registry starts Debian's docker-registry on a 127.0.0.1 port for
// the Docker tests and the docker-pull benchmark, and stops it by its PID.
package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// readyWithin bounds the wait for a registry to answer: readiness, not
// timing; generous for a busy machine.
const readyWithin = 30 * time.Second

// Start runs bin (docker-registry) serving host ("127.0.0.1:PORT") with
// its storage and configuration in dir, and returns once it answers
// /v2/. stop kills it by its PID and reaps it.
func Start(bin, dir, host string) (stop func(), err error) {
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	stop = func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
	}
	deadline := time.Now().Add(readyWithin)
	for {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("docker-registry on %s did not come up: %v\n%s", host, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
