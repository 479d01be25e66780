// Command vsockbench compares the KVM stage1's agent channels on this host:
// the userspace virtio-vsock device (transport.UserspaceVsock, served by
// hypervisor/vhostuser/vsock) against the virtio-serial port, the
// transport it replaces on hosts without /dev/vhost-vsock. In one run it
// boots one VM per transport with tests/vsockguest as /init, reaches it
// through the driver's DialAgent exactly as stage1-kvm does, and prints
//
//	BENCH vsock-rtt <userspace> <serial> ratio=<userspace/serial>
//	BENCH vsock-throughput <userspace> <serial> ratio=<userspace/serial>
//
// Round-trip time is the median over -rounds 64-byte echoes, after as many
// unmeasured ones that let the freshly booted guest settle (lower is
// better); throughput is host-to-guest MiB/s writing -mib MiB in 1 MiB
// messages, checksummed by the guest (higher is better). The transports
// take turns, -runs VMs each, and each figure is the median of its runs:
// the ratios then hold whatever TCG or the machine's load does to absolute
// numbers.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"rkt.dev/rkt/hypervisor"
	"rkt.dev/rkt/hypervisor/qemu"
	"rkt.dev/rkt/hypervisor/transport"
	"rkt.dev/rkt/tests/vsockguest/wire"
)

func main() {
	var o options
	flag.StringVar(&o.kernel, "kernel", "build/kernel/vmlinux", "guest kernel")
	flag.StringVar(&o.initrd, "initrd", "build/bench/vsockguest-initrd.img", "initramfs with tests/vsockguest as /init")
	flag.IntVar(&o.rounds, "rounds", 2000, "64-byte round trips per transport")
	flag.IntVar(&o.mib, "mib", 64, "MiB sent per transport for throughput, in 1 MiB messages")
	flag.IntVar(&o.runs, "runs", 3, "VMs booted per transport, taking turns")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "vsockbench:", err)
		os.Exit(1)
	}
}

type options struct {
	kernel, initrd    string
	rounds, mib, runs int
}

// result is one transport's figures.
type result struct {
	rtt        time.Duration
	throughput float64 // MiB/s
}

func run(o options) error {
	if o.rounds < 10 || o.mib < 1 || o.runs < 1 {
		return fmt.Errorf("-rounds must be at least 10, -mib and -runs at least 1")
	}
	var urs, srs []result
	for range o.runs {
		u, err := measure(o, transport.UserspaceVsock)
		if err != nil {
			return err
		}
		s, err := measure(o, transport.Serial)
		if err != nil {
			return err
		}
		urs, srs = append(urs, u), append(srs, s)
	}
	u, s := medians(urs), medians(srs)
	fmt.Printf("BENCH vsock-rtt %.1fµs %.1fµs ratio=%.2f\n", us(u.rtt), us(s.rtt), us(u.rtt)/us(s.rtt))
	fmt.Printf("BENCH vsock-throughput %.1fMiB/s %.1fMiB/s ratio=%.2f\n", u.throughput, s.throughput, u.throughput/s.throughput)
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// medians returns the median of each figure.
func medians(rs []result) result {
	rtts := make([]time.Duration, len(rs))
	tps := make([]float64, len(rs))
	for i, r := range rs {
		rtts[i], tps[i] = r.rtt, r.throughput
	}
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	sort.Float64s(tps)
	return result{rtt: rtts[len(rtts)/2], throughput: tps[len(tps)/2]}
}

// measure boots a VM with the given agent transport and times it.
func measure(o options, kind transport.Kind) (result, error) {
	dir, err := os.MkdirTemp("", "rkt-vsockbench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vm, err := qemu.Start(ctx, hypervisor.Config{
		Kernel: o.kernel, Initrd: o.initrd, MemoryMiB: 256, VCPUs: 1,
		Agent: kind, RuntimeDir: dir,
	})
	if err != nil {
		return result{}, fmt.Errorf("booting the %s VM: %w", kind, err)
	}
	defer func() {
		stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		vm.Stop(stop, true)
	}()
	if got := vm.Info().Agent; got != kind {
		return result{}, fmt.Errorf("asked for %s, the driver chose %s", kind, got)
	}
	// One connection for everything: virtio-serial carries a single
	// stream, and a guest may not notice a disconnect before the next
	// connection's bytes arrive.
	c, err := vm.DialAgent(ctx)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	r := bufio.NewReader(c)
	var res result
	if res.rtt, err = roundTrips(c, r, o.rounds); err != nil {
		return result{}, fmt.Errorf("%s round trips: %w", kind, err)
	}
	if res.throughput, err = throughput(c, r, o.mib); err != nil {
		return result{}, fmt.Errorf("%s throughput: %w", kind, err)
	}
	return res, nil
}

// roundTrips returns the median time of a 64-byte echo.
func roundTrips(c net.Conn, r io.Reader, n int) (time.Duration, error) {
	if _, err := fmt.Fprintf(c, "ECHO %d\n", 2*n*64); err != nil {
		return 0, err
	}
	msg, got := make([]byte, 64), make([]byte, 64)
	echo := func(i int) (time.Duration, error) {
		msg[0] = byte(i)
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(r, got); err != nil {
			return 0, err
		}
		if got[0] != byte(i) {
			return 0, fmt.Errorf("echo %d came back as %d", i, got[0])
		}
		return time.Since(start), nil
	}
	for i := range n {
		if _, err := echo(i); err != nil {
			return 0, err
		}
	}
	times := make([]time.Duration, n)
	for i := range times {
		var err error
		if times[i], err = echo(i); err != nil {
			return 0, err
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times[len(times)/2], nil
}

// throughput sends mib MiB in 1 MiB writes and returns MiB/s, once the
// guest has confirmed the checksum.
func throughput(c net.Conn, r *bufio.Reader, mib int) (float64, error) {
	total := int64(mib) << 20
	if _, err := fmt.Fprintf(c, "SINK %d\n", total); err != nil {
		return 0, err
	}
	msg := make([]byte, 1<<20)
	h := crc32.New(wire.Table)
	p := wire.NewPattern(1)
	start := time.Now()
	for range mib {
		p.Read(msg)
		h.Write(msg)
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
	}
	line, err := r.ReadString('\n')
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("reading the guest's checksum: %w", err)
	}
	if want := fmt.Sprintf("%08x", h.Sum32()); strings.TrimSpace(line) != want {
		return 0, fmt.Errorf("guest checksum %q, want %s", strings.TrimSpace(line), want)
	}
	return float64(mib) / elapsed.Seconds(), nil
}
