// Package run is stage0's pipeline: it turns images and flags into a pod
// directory and hands the pod to its stage1.
//
// The pipeline is a list of named steps, in the order they run:
//
//	resolveStage1 → fetchImages → render → preparePod → execStage1
//
// `rkt prepare` runs every step but the last, `rkt run-prepared` runs only
// the last, and `rkt run` runs them all. Each step reads and fills the
// shared state, so a step can be tested, timed (with --debug) and reasoned
// about alone.
package run
