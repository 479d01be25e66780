package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/image"
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
				id, err := fetchImage(g, s, ref)
				if err != nil {
					return fmt.Errorf("fetching %s: %w", ref, err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
}

// fetchImage gets one image into the store by the kind of reference, in
// rkt's order: a URL by its scheme, then an existing file or a name ending
// in .aci, then an ID or a name in the store.
func fetchImage(g *globalOptions, s *image.Store, ref string) (string, error) {
	if scheme, rest, ok := strings.Cut(ref, "://"); ok {
		if scheme != "file" {
			return "", fmt.Errorf("%s:// images are not supported yet; only ACI files and images already in the store can be fetched", scheme)
		}
		return fetchFile(g, s, rest)
	}
	if fi, err := os.Stat(ref); (err == nil && !fi.IsDir()) || strings.HasSuffix(ref, ".aci") {
		return fetchFile(g, s, ref)
	}
	id, err := s.Resolve(ref)
	if errors.Is(err, image.ErrNotFound) {
		return "", fmt.Errorf("%w; image discovery is not implemented yet, so fetch the ACI file instead", err)
	}
	return id, err
}

func fetchFile(g *globalOptions, s *image.Store, path string) (string, error) {
	if !g.insecure("image") {
		return "", errors.New("signature verification is not implemented yet for file images; rerun with --insecure-options=image")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return s.Import(f)
}
