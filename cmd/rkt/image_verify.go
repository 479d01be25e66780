package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/image/acifetch"
	"rkt.dev/rkt/stage0/image/remote"
	"rkt.dev/rkt/stage0/image/trust"
)

func newImageVerifyCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "verify IMAGE...",
		Short: "Check stored images against their IDs and the trust store",
		Long: `Check that each stored image is intact (its content still hashes to its ID)
and that the signature it was fetched with is still valid for the trust
store as it is now: a key removed or masked since the fetch is reported.

The signature itself is checked again when the image was fetched
uncompressed; for a compressed download, which the store keeps uncompressed,
the signing key is checked against the trust store. Images without a
signature (fetched with --insecure-options=image, or converted from Docker
images) fail verification.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImageStore(g, cmd)
			if err != nil {
				return err
			}
			dir, err := g.dataDir(cmd)
			if err != nil {
				return err
			}
			index, err := remote.Open(dir)
			if err != nil {
				return err
			}
			o := acifetch.Options{Store: s, Index: index,
				Trust: trust.Store{SystemDir: g.SystemConfig, LocalDir: g.LocalConfig}}
			var errs []error
			for _, ref := range args {
				id, err := s.Resolve(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				r, err := acifetch.VerifyStored(id, o)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				how := "signing key still trusted"
				if r.Rechecked {
					how = "signature verified"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: ok: %s: key %s (%s)\n", r.ID, r.Name, how, r.Signer, r.Identity)
			}
			return errors.Join(errs...)
		},
	}
}
