// Command rkt is the rkt CLI: a daemonless container runtime whose pods run
// under a swappable stage1 (kvm, nspawn or fly).
//
// This package only parses flags and prints results; the work is done by the
// packages under stage0/.
package main

import (
	"errors"
	"fmt"
	"os"
)

// exitRkt is the exit code of every failure of rkt itself, as opposed to an
// app's own exit code, which `rkt run` passes through.
const exitRkt = 254

// exitCodeError makes rkt exit with a given code and no message of its own:
// `rkt run` uses it to pass the app's exit code through.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(execute(os.Args[1:]))
}

func execute(args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	fmt.Fprintf(os.Stderr, "rkt: %v\n", err)
	return exitRkt
}
