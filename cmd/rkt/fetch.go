package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/image/remote"
	"rkt.dev/rkt/stage0/run"
)

func init() { register(newFetchCommand) }

func newFetchCommand(g *globalOptions) *cobra.Command {
	var pullPolicy string
	cmd := &cobra.Command{
		Use:   "fetch IMAGE...",
		Short: "Fetch images into the local store and print their IDs",
		Long: `Fetch images into the local store and print the ID of each, one per line.

IMAGE is one of:
  docker://[REGISTRY[:PORT]/]NAME[:TAG|@DIGEST]   a Docker v2 or OCI registry image
  oci-layout:PATH[:TAG]                           an image of an OCI image layout
  docker-archive:PATH                             a 'docker save' archive
  PATH or file://PATH                             an ACI file, signed by PATH.asc
  https://HOST/PATH.aci                           an ACI URL, signed by URL.asc
  NAME[:VERSION]                                  an ACI found by appc meta discovery
  sha512-...                                      an image ID already in the store

ACIs are verified against the trust store (see 'rkt trust'); Docker and OCI
images carry no signature and need --insecure-options=image. Registries on
localhost are reached over plain HTTP, all others over HTTPS; credentials
come from auth.d. Progress goes to stderr: bars on a terminal, one line per
step otherwise.

--pull-policy decides when the network is used: "new" fetches only images
that are not stored, "update" (the default) asks the server whether a stored
image changed and downloads it only if it did, "never" uses the store only.`,
		Example: `  rkt --insecure-options=image fetch docker://busybox
  rkt fetch example.com/app:v1.0
  rkt --insecure-options=image fetch ./app.aci`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, err := remote.ParsePullPolicy(pullPolicy)
			if err != nil {
				return fmt.Errorf("--pull-policy: %w", err)
			}
			s, err := openImageStore(g, cmd)
			if err != nil {
				return err
			}
			o, err := fetchOptions(g, cmd, policy)
			if err != nil {
				return err
			}
			// Interrupting a fetch cancels it cleanly: temporary files
			// are removed and the store is left as it was.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			for _, ref := range args {
				// The run pipeline fetches with the same function, so
				// both accept the same references.
				id, err := run.FetchImage(ctx, s, ref, o)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pullPolicy, "pull-policy", "update", "when to use the network: new, update or never")
	return cmd
}

// fetchOptions are the fetch settings of the global flags and the
// configuration.
func fetchOptions(g *globalOptions, cmd *cobra.Command, policy remote.PullPolicy) (run.FetchOptions, error) {
	dir, err := g.dataDir(cmd)
	if err != nil {
		return run.FetchOptions{}, err
	}
	cfg, err := g.config()
	if err != nil {
		return run.FetchOptions{}, err
	}
	return run.FetchOptions{
		DataDir:            dir,
		Config:             cfg,
		PullPolicy:         policy,
		InsecureImage:      g.insecure("image"),
		InsecureTLS:        g.insecure("tls"),
		InsecureHTTP:       g.insecure("http"),
		TrustKeysFromHTTPS: g.TrustKeysHTTPS,
		Log:                cmd.ErrOrStderr(),
	}, nil
}
