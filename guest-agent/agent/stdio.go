package agent

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"rkt.dev/rkt/guest-agent/api"
	"rkt.dev/rkt/stage1/supervisor"
)

// stdio holds the standard streams of an app or an exec'd command: either
// a pseudo-terminal or pipes. The child ends go to the process; the agent
// keeps the others and relays them over the API.
type stdio struct {
	tty                          bool
	childIn, childOut, childErr  *os.File // childIn is nil without input
	in, out, errOut              *os.File // agent ends; errOut is nil with a tty
	closeInOnce, closeOutputOnce sync.Once
}

// newStdio makes the streams of one process: a pseudo-terminal of the
// given size (nil: the kernel's default) if tty is set, else pipes, with
// an input pipe only if input is set (the process then reads /dev/null).
func newStdio(tty bool, size *api.WindowSize, input bool) (*stdio, error) {
	s := &stdio{tty: tty}
	if tty {
		master, slave, err := openPTY()
		if err != nil {
			return nil, err
		}
		s.in, s.out = master, master
		s.childIn, s.childOut, s.childErr = slave, slave, slave
		if size != nil {
			s.resize(size)
		}
		return s, nil
	}
	var err error
	if input {
		if s.childIn, s.in, err = os.Pipe(); err != nil {
			return nil, err
		}
	}
	if s.out, s.childOut, err = os.Pipe(); err != nil {
		s.close()
		return nil, err
	}
	if s.errOut, s.childErr, err = os.Pipe(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// copyOutputs hands every chunk of output to send, which is told whether
// it came from stderr, until each stream ends. Once exited is closed, what
// a descendant of the process still holds open is read for
// supervisor.OutputDrain at most: a daemon the process started must not
// keep its output open forever. A read error ends a stream silently: the
// process's side is gone (EIO on a terminal), or the drain time is over.
func (s *stdio) copyOutputs(exited <-chan struct{}, send func(stderr bool, b []byte) error) error {
	var (
		sendMu sync.Mutex
		wg     sync.WaitGroup
		outs   = uniqueFiles(s.out, s.errOut)
		errs   = make([]error, len(outs))
	)
	for i, f := range outs {
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					sendMu.Lock()
					serr := send(f == s.errOut, append([]byte(nil), buf[:n]...))
					sendMu.Unlock()
					if serr != nil {
						errs[i] = fmt.Errorf("sending output: %w", serr)
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
	streamed := make(chan struct{})
	go func() {
		select {
		case <-exited:
			end := time.Now().Add(supervisor.OutputDrain)
			for _, f := range outs {
				f.SetReadDeadline(end)
			}
		case <-streamed:
		}
	}()
	wg.Wait()
	close(streamed)
	return errors.Join(errs...)
}

// write types or pipes b into the process's input. A process that stopped
// reading makes it fail; the caller drops the rest.
func (s *stdio) write(b []byte) error {
	_, err := s.in.Write(b)
	return err
}

// closeInput ends the process's input: EOF on a pipe; on a terminal, the
// end-of-file character, as a user typing ^D (the terminal also carries
// the output, so it stays open).
func (s *stdio) closeInput() {
	s.closeInOnce.Do(func() {
		if s.tty {
			s.in.Write([]byte{4})
			return
		}
		if s.in != nil {
			s.in.Close()
		}
	})
}

// resize sets the terminal's size, which signals SIGWINCH to its
// foreground process group; without a terminal it does nothing. The
// ioctl runs under the file's reference (Control), so a concurrent
// closeOutputs cannot hand its descriptor number to another file first.
func (s *stdio) resize(ws *api.WindowSize) {
	if !s.tty || ws == nil {
		return
	}
	rc, err := s.out.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(ws.Rows), Col: uint16(ws.Cols)})
	})
}

// closeChildEnds closes the agent's copies of the process's ends, once the
// process has them: the agent's streams then end when the process's do.
func (s *stdio) closeChildEnds() {
	for _, f := range uniqueFiles(s.childIn, s.childOut, s.childErr) {
		f.Close()
	}
}

// closeOutputs closes the agent's output ends, which also ends the input
// of a terminal.
func (s *stdio) closeOutputs() {
	s.closeOutputOnce.Do(func() {
		for _, f := range uniqueFiles(s.out, s.errOut) {
			f.Close()
		}
	})
}

// close releases every end the agent still holds.
func (s *stdio) close() {
	s.closeChildEnds()
	s.closeOutputs()
	if !s.tty {
		s.closeInput()
	}
}

// uniqueFiles drops nil and repeated files (a terminal is stdin, stdout
// and stderr at once).
func uniqueFiles(files ...*os.File) []*os.File {
	var out []*os.File
	for _, f := range files {
		if f != nil && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// openPTY opens a new pseudo-terminal pair. The master is non-blocking, so
// that Go's poller serves it: read deadlines then work and closing it ends
// a pending read. The peer is opened through the master (TIOCGPTPEER)
// rather than by its /dev/pts path, so it works whatever devpts instance
// the caller sees, and it blocks, as a process expects of its terminal.
func openPTY() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlocking the pseudo-terminal: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("opening the pseudo-terminal's peer: %w", errno)
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(sfd, "pts"), nil
}
