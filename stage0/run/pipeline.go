package run

import (
	"fmt"
	"io"
	"time"

	"github.com/appc/spec/schema"

	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/pod"
)

// state is what the steps share.
type state struct {
	opts  Options
	store *image.Store

	stage1ID       string
	stage1Manifest *schema.ImageManifest
	stage1Tree     string

	images []fetchedImage // one per app, in order
	pod    *pod.Pod
}

// fetchedImage is an app's image once it is in the store.
type fetchedImage struct {
	id       string
	manifest *schema.ImageManifest
	treeID   string
}

// step is one named stage of the pipeline.
type step struct {
	name string
	run  func(*state) error
}

var (
	prepareSteps = []step{
		{"resolveStage1", (*state).resolveStage1},
		{"fetchImages", (*state).fetchImages},
		{"render", (*state).render},
		{"preparePod", (*state).preparePod},
	}
	execStep = step{"execStage1", (*state).execStage1}
)

func (s *state) logf(format string, args ...any) {
	if s.opts.Debug && s.opts.Log != nil {
		fmt.Fprintf(s.opts.Log, "rkt: "+format+"\n", args...)
	}
}

func runSteps(s *state, steps []step) error {
	for _, st := range steps {
		start := time.Now()
		if err := st.run(s); err != nil {
			s.cleanupFailed()
			return err
		}
		s.logf("%s done in %s", st.name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func newState(opts Options) (*state, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	store, err := image.Open(opts.DataDir)
	if err != nil {
		return nil, err
	}
	// The first pod of an image renders it, which takes a while for a
	// large image (a stage1 holds a kernel): show it as fetches are shown.
	return &state{opts: opts, store: store.WithProgress(opts.Log)}, nil
}

// Prepare creates a pod in the prepared state and returns its UUID.
func Prepare(opts Options) (string, error) {
	s, err := newState(opts)
	if err != nil {
		return "", err
	}
	if err := runSteps(s, prepareSteps); err != nil {
		return "", err
	}
	uuid := s.pod.UUID
	if err := s.pod.ToPrepared(); err != nil {
		s.cleanupFailed()
		return "", err
	}
	if err := s.saveUUID(); err != nil {
		return "", err
	}
	return uuid, nil
}

// Run prepares a pod and execs its stage1; on success it does not return.
func Run(opts Options) error {
	s, err := newState(opts)
	if err != nil {
		return err
	}
	return runSteps(s, append(append([]step{}, prepareSteps...), execStep))
}

// RunPrepared execs the stage1 of a prepared pod; on success it does not
// return. Only the run-time settings of opts (Net, Hostname, Interactive,
// Debug, LocalConfig) apply.
func RunPrepared(opts Options, uuid string) error {
	s, err := newState(opts)
	if err != nil {
		return err
	}
	p, err := pod.Load(opts.DataDir, uuid)
	if err != nil {
		return err
	}
	if p.State() != pod.Prepared {
		return fmt.Errorf("pod %s is %s, not prepared; only prepared pods can be run with run-prepared", p.UUID, p.State())
	}
	if err := p.TryLock(); err != nil {
		return fmt.Errorf("pod %s is being used by another rkt process: %w", p.UUID, err)
	}
	s.pod = p
	if s.stage1Manifest, err = p.Stage1Manifest(); err != nil {
		p.Close()
		return err
	}
	if err := s.execStage1(); err != nil {
		p.Close()
		return err
	}
	return nil
}

// cleanupFailed removes a pod whose preparation failed, so a failed rkt
// run or prepare leaves nothing behind.
func (s *state) cleanupFailed() {
	if s.pod == nil || s.pod.State() == pod.Prepared {
		return
	}
	s.pod.Remove(pod.GCOptions{})
	s.pod.Close()
	s.pod = nil
}
