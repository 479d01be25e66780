package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/internal/version"
)

func init() {
	register(newVersionCommand)
	register(newConfigCommand)
}

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Printf("rkt Version: %s\n", version.Version)
			fmt.Printf("appc Version: %s\n", version.AppcVersion)
			fmt.Printf("Go Version: %s\n", runtime.Version())
			fmt.Printf("Go OS/Arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
		},
	}
}

func newConfigCommand(g *globalOptions) *cobra.Command {
	var pretty bool
	c := &cobra.Command{
		Use:   "config",
		Short: "Print the merged configuration as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			return printJSON(os.Stdout, cfg, pretty)
		},
	}
	c.Flags().BoolVar(&pretty, "pretty-print", false, "indent the JSON")
	return c
}
