package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// A VM template is saved with QEMU's migration, to a file instead of
// another QEMU: the x-ignore-shared capability leaves the guest RAM out of
// the stream, since it is already in the template's memory file, so the
// state is a few hundred KiB of CPU and device registers. QEMU 7.2 has no
// file: migration target and its sandbox forbids exec:, so the stream goes
// over a Unix socket that this process copies to the file.

// stateFD and memoryFD are the descriptor numbers of the template's state
// and RAM files in a clone's QEMU (exec.Cmd.ExtraFiles; a clone has no
// huge-page RAM file). The clone maps the RAM file privately, so nothing
// it does reaches the file, as long as QEMU is not asked to discard guest
// RAM: 7.2 punches holes into the file for that, so a clone must have no
// balloon, virtio-mem or postcopy (the driver adds none).
const (
	stateFD  = 3
	memoryFD = 4
)

// ErrRestore marks a clone that QEMU could not resume from its template's
// files (a corrupt or foreign state, a missing file): the template is of
// no use, unlike after a failure of the clone's own configuration.
var ErrRestore = errors.New("cannot resume the VM template")

// migrationPoll is how often the migration status is asked for.
const migrationPoll = 2 * time.Millisecond

// SaveSnapshot implements hypervisor.VM.
func (v *vm) SaveSnapshot(ctx context.Context) error {
	if v.snapshot == nil || v.restore {
		return errors.New("only a template VM (a Snapshot config without Restore) can be saved")
	}
	if _, err := v.command(ctx, "stop"); err != nil {
		return err
	}
	sock := filepath.Join(v.runtimeDir, "migrate.sock")
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening for the VM's state: %w", err)
	}
	defer l.Close()
	defer os.Remove(sock)
	tmp := v.snapshot.State + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the template state file: %w", err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	defer out.Close()
	copied := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			copied <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(out, c)
		copied <- err
	}()
	if _, err := v.commandArgs(ctx, "migrate", map[string]string{"uri": "unix:" + sock}); err != nil {
		return fmt.Errorf("saving the VM template: %w", err)
	}
	if err := v.waitMigration(ctx); err != nil {
		return fmt.Errorf("saving the VM template: %w", err)
	}
	select {
	case err := <-copied:
		if err != nil {
			return fmt.Errorf("saving the VM template: %w", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("saving the VM template: %w", ctx.Err())
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("writing the template state file: %w", err)
	}
	if err := os.Rename(tmp, v.snapshot.State); err != nil {
		return fmt.Errorf("saving the VM template: %w", err)
	}
	return nil
}

// waitMigration polls QEMU until an outgoing or incoming migration has
// completed, and reports its failure.
func (v *vm) waitMigration(ctx context.Context) error {
	for {
		out, err := v.command(ctx, "query-migrate")
		if err != nil {
			return err
		}
		var reply struct {
			Return struct {
				Status    string `json:"status"`
				ErrorDesc string `json:"error-desc"`
			} `json:"return"`
		}
		if err := json.Unmarshal(out, &reply); err != nil {
			return fmt.Errorf("decoding QEMU's query-migrate reply %q: %w", out, err)
		}
		switch reply.Return.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("QEMU's migration %s: %s", reply.Return.Status, reply.Return.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(migrationPoll):
		}
	}
}
