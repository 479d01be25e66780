package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func printIPv4(w io.Writer) error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	var ips []string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.IsLoopback() || ipnet.IP.To4() == nil {
			continue
		}
		ips = append(ips, ipnet.IP.String())
	}
	_, err = fmt.Fprintf(w, "ipv4=%s\n", strings.Join(ips, ","))
	return err
}

// httpTimeout bounds --get-http so that an unreachable peer fails the
// action instead of hanging the pod until the test's own timeout.
const httpTimeout = 10 * time.Second

func getHTTP(w io.Writer, url string) error {
	client := &http.Client{Timeout: httpTimeout}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading body from %s: %w", url, err)
	}
	_, err = fmt.Fprintf(w, "http-status=%d http-body=<<<%s>>>\n", resp.StatusCode, body)
	return err
}

// serveHTTP answers GET / with the hostname, so a client test can tell
// which pod it reached. The "serving=" line is printed only once the
// socket listens, so tests can wait for it instead of polling the port.
func serveHTTP(w io.Writer, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, _ *http.Request) {
		name, err := os.Hostname()
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(rw, name)
	})
	if _, err := fmt.Fprintf(w, "serving=%s\n", ln.Addr()); err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: httpTimeout}
	return srv.Serve(ln)
}

// vsockProbeWait is how long --probe-vsock waits for an accepted
// connection to be hung up before it calls the listener open.
const vsockProbeWait = 2 * time.Second

// probeVsock connects to an AF_VSOCK address and tells what answered:
// nothing (refused), a listener that accepted and hung up at once (closed:
// the kvm guest agent refusing a guest process), or one that accepted and
// waits for a request (open).
func probeVsock(w io.Writer, target string) error {
	var cid, port uint32
	if _, err := fmt.Sscanf(target, "%d:%d", &cid, &port); err != nil {
		return fmt.Errorf("want CID:PORT, got %q", target)
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("creating a vsock socket: %w", err)
	}
	defer unix.Close(fd)
	state := "open"
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port}); err != nil {
		if !errors.Is(err, unix.ECONNREFUSED) && !errors.Is(err, unix.ECONNRESET) {
			return fmt.Errorf("connecting to vsock %s: %w", target, err)
		}
		state = "refused"
	} else {
		tv := unix.NsecToTimeval(vsockProbeWait.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("setting a read timeout: %w", err)
		}
		var b [1]byte
		n, err := unix.Read(fd, b[:])
		switch {
		case err == nil && n == 0, errors.Is(err, unix.ECONNRESET):
			state = "closed"
		case errors.Is(err, unix.EAGAIN), err == nil:
		default:
			return fmt.Errorf("reading from vsock %s: %w", target, err)
		}
	}
	_, err = fmt.Fprintf(w, "vsock=%s %s\n", target, state)
	return err
}
