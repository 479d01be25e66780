package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
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
