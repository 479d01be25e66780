// Package version holds rkt's version, set at build time by the Makefile
// (-ldflags -X), so that the CLI, the stage1 image labels and `rkt version`
// agree.
package version

// Version is rkt's version.
var Version = "0.0.0-dev"

// AppcVersion is the appc spec version rkt implements.
const AppcVersion = "0.8.11"
