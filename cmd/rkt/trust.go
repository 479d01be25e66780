package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/image/acifetch"
	"rkt.dev/rkt/stage0/image/progress"
	"rkt.dev/rkt/stage0/image/trust"
)

func init() { register(newTrustCommand) }

func newTrustCommand(g *globalOptions) *cobra.Command {
	var (
		prefix            string
		root, skip, insec bool
	)
	cmd := &cobra.Command{
		Use:   "trust [--prefix=PREFIX | --root] [PUBKEY_FILE_OR_URL...]",
		Short: "Trust a key to sign images",
		Long: `Add OpenPGP public keys to the trust store, for images whose names start
with PREFIX (--prefix) or for all images (--root). Keys are stored in the
local configuration directory as trustedkeys/prefix.d/PREFIX/<fingerprint>
or trustedkeys/root.d/<fingerprint>.

A key is an armored public key file or an https:// URL. Without a key,
--prefix discovers the keys of PREFIX through appc meta discovery
(ac-discovery-pubkeys). Each key's fingerprint is shown and must be
confirmed by typing "yes", unless --skip-fingerprint-review is given.`,
		Example: `  rkt trust --prefix=example.com/app ./pubkey.asc
  rkt trust --prefix=example.com/app
  rkt trust --root https://example.com/root.asc`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case root && prefix != "":
				return errors.New("give --prefix or --root, not both")
			case !root && prefix == "":
				return errors.New("give --prefix=PREFIX to trust keys for images named PREFIX..., or --root for all images")
			case root && len(args) == 0:
				return errors.New("--root needs a key file or URL: root keys are never discovered")
			case prefix != "":
				if err := trust.CheckPrefix(prefix); err != nil {
					return err
				}
			}
			cfg, err := g.config()
			if err != nil {
				return err
			}
			o := acifetch.Options{
				Trust:        trust.Store{SystemDir: g.SystemConfig, LocalDir: g.LocalConfig},
				HTTP:         acifetch.NewHTTPClient(g.insecure("tls")),
				Auth:         cfg.Auth,
				InsecureHTTP: insec,
				Progress:     progress.New(cmd.ErrOrStderr()),
			}
			r := &reviewer{in: bufio.NewReader(cmd.InOrStdin()), out: cmd.OutOrStdout(), prefix: prefix, skip: skip}
			ctx := context.Background()
			if len(args) == 0 {
				added, err := o.TrustDiscoveredKeys(ctx, prefix, prefix, r.confirm)
				for _, k := range added {
					r.added(k)
				}
				return err
			}
			for _, src := range args {
				b, err := readKey(ctx, &o, src)
				if err != nil {
					return err
				}
				ok, err := r.confirm(b, src)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				k, err := o.Trust.Add(b, prefix)
				if err != nil {
					return fmt.Errorf("key %s: %w", src, err)
				}
				r.added(k)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "prefix", "", "trust the keys for images whose names start with this prefix")
	f.BoolVar(&root, "root", false, "trust the keys for all images")
	f.BoolVar(&skip, "skip-fingerprint-review", false, "trust without asking to confirm each key's fingerprint")
	f.BoolVar(&insec, "insecure-allow-http", false, "allow fetching keys and discovering them over plain HTTP")
	return cmd
}

// readKey reads a key file or downloads a key URL.
func readKey(ctx context.Context, o *acifetch.Options, src string) ([]byte, error) {
	if acifetch.IsURL(src) {
		b, err := o.FetchKey(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("fetching key %s: %w", src, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	return b, nil
}

// reviewer shows each key and asks the user to confirm it.
type reviewer struct {
	in     *bufio.Reader
	out    io.Writer
	prefix string
	skip   bool
}

func (r *reviewer) confirm(armored []byte, src string) (bool, error) {
	e, err := trust.ParseKey(armored)
	if err != nil {
		return false, fmt.Errorf("key %s: %w", src, err)
	}
	what := "all images (root key)"
	if r.prefix != "" {
		what = fmt.Sprintf("prefix %q", r.prefix)
	}
	fmt.Fprintf(r.out, "Key %q for %s:\n", src, what)
	fmt.Fprintf(r.out, "  fingerprint %s\n", spaced(trust.Fingerprint(e)))
	for _, sub := range e.Subkeys {
		fmt.Fprintf(r.out, "  subkey      %s\n", spaced(fmt.Sprintf("%x", sub.PublicKey.Fingerprint)))
	}
	for name := range e.Identities {
		fmt.Fprintf(r.out, "  %s\n", name)
	}
	if r.skip {
		return true, nil
	}
	fmt.Fprint(r.out, "Are you sure you want to trust this key (yes/no)? ")
	line, err := r.in.ReadString('\n')
	if err != nil && line == "" {
		return false, errors.New("no answer to the fingerprint review (stdin closed); answer yes, or use --skip-fingerprint-review")
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "yes", "y":
		return true, nil
	}
	fmt.Fprintln(r.out, "Not trusting the key.")
	return false, nil
}

func (r *reviewer) added(k trust.Key) {
	fmt.Fprintf(r.out, "Added key %s at %s\n", k.Fingerprint, k.Path)
}

// spaced groups a fingerprint by four digits, as gpg prints it.
func spaced(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fp[i:min(i+4, len(fp))])
	}
	return b.String()
}
