package stage1

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ExitFailure is the exit code of a stage1 entrypoint that failed itself,
// as opposed to passing on an app's code; it is rkt's own failure code.
const ExitFailure = 254

// Command is one entrypoint (or flavor-internal command) of a stage1
// binary. It returns the exit code, which is ignored when err is set.
type Command func(args []string) (int, error)

// NoCode adapts an entrypoint that has no exit code of its own (stop, gc).
func NoCode(f func(args []string) error) Command {
	return func(args []string) (int, error) { return 0, f(args) }
}

// Main runs the command a stage1 binary was started as and exits. Each
// flavor is one binary that its image links as /init, /enter, /stop and
// /gc; the name it runs under picks the command (argv[0] "run" is an alias
// of "init"). An error is printed as "<prog>: <error>" and exits
// ExitFailure.
func Main(prog string, commands map[string]Command) {
	name := filepath.Base(os.Args[0])
	if name == "run" {
		name = "init"
	}
	cmd, ok := commands[name]
	if !ok {
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "%s: unknown entrypoint %q; run me as one of %s\n", prog, name, strings.Join(names, ", "))
		os.Exit(ExitFailure)
	}
	code, err := cmd(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		if code == 0 {
			code = ExitFailure
		}
	}
	os.Exit(code)
}
