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
store as it is now: a key removed, masked, expired or revoked since the
fetch is reported, with the image, the key and what to do.

The signature is checked against the bytes it signed: the stored image, or,
for an image fetched compressed, the compressed file, which the store keeps
for this (and checks to still decompress to the image). Images without a
signature (fetched with --insecure-options=image, or converted from Docker
and OCI images) have nothing to verify and fail.`,
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
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: ok: signature verified: key %s (%s)\n", r.ID, r.Name, r.Signer, r.Identity)
			}
			return errors.Join(errs...)
		},
	}
}
