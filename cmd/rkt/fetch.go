package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/run"
)

func init() { register(newFetchCommand) }

func newFetchCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "fetch IMAGE...",
		Short: "Fetch images into the local store and print their IDs",
		Long: `Fetch images into the local store and print the ID of each, one per line.

IMAGE is an ACI file (a path, or a file:// URL), an image ID, or an image
name with an optional :version. For now only files can be fetched, and only
with --insecure-options=image, since signature verification comes later;
an ID or a name is accepted when the image is already in the store.`,
		Example: "  rkt --insecure-options=image fetch ./app.aci",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImageStore(g, cmd)
			if err != nil {
				return err
			}
			for _, ref := range args {
				// The run pipeline fetches with the same function, so
				// both accept the same references.
				id, err := run.FetchImage(s, ref, g.insecure("image"))
				if errors.Is(err, image.ErrNotFound) {
					return fmt.Errorf("image %q is not in the store and image discovery is not implemented yet; fetch the ACI file instead", ref)
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
}
