// Package registry starts Debian's docker-registry on a 127.0.0.1 port for
// the Docker tests and the docker-pull benchmark, and stops it by its PID.
package registry

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// readyWithin bounds the wait for a registry to answer: readiness, not
// timing; generous for a busy machine.
const readyWithin = 30 * time.Second

// probeTimeout bounds one readiness probe.
const probeTimeout = 2 * time.Second

// attempts bounds the retries on a fresh port when the registry exits at
// start, most likely because another process took the port between its
// choice and the registry's bind.
const attempts = 3

// errExited marks a registry that exited before it answered.
var errExited = errors.New("docker-registry exited at start")

// Start runs bin (docker-registry) serving host ("127.0.0.1:PORT"; port 0
// picks a free one) with its storage and configuration in dir, and returns
// once it answers /v2/, with the address it serves. stop kills it by its
// PID and reaps it.
func Start(bin, dir, host string) (addr string, stop func(), err error) {
	ip, port, err := net.SplitHostPort(host)
	if err != nil {
		return "", nil, err
	}
	for attempt := 1; ; attempt++ {
		addr = host
		if port == "0" {
			if addr, err = freeAddr(ip); err != nil {
				return "", nil, err
			}
		}
		stop, err = start(bin, dir, addr)
		if errors.Is(err, errExited) && port == "0" && attempt < attempts {
			continue
		}
		return addr, stop, err
	}
}

// freeAddr returns ip with a port that is free now.
func freeAddr(ip string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start runs one registry on addr and waits for it to answer, or to exit.
func start(bin, dir, addr string) (stop func(), err error) {
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
`, filepath.Join(dir, "storage"), addr)
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
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop = func() {
		cmd.Process.Kill()
		<-exited
	}
	// Each probe is bounded: whatever else holds the port may accept and
	// never answer.
	client := &http.Client{Timeout: probeTimeout}
	deadline := time.Now().Add(readyWithin)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		select {
		case <-exited:
			// Whatever answered, if anything, was not this registry.
			return nil, fmt.Errorf("%w on %s: %s", errExited, addr, logs.String())
		default:
		}
		if err == nil && resp.StatusCode == http.StatusOK {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("docker-registry on %s did not come up: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
