package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"rkt.dev/rkt/stage0/image"
	"rkt.dev/rkt/stage0/pod"
)

// imagesInUse tells `image rm` and `image gc` which pods use an image:
// every pod still on disk, whatever its state, since even an exited pod's
// directory points into the image's rendered tree until it is collected.
func imagesInUse(dataDir string) image.InUseFunc {
	var users map[string][]string
	return func(id string) []string {
		if users == nil {
			users = map[string][]string{}
			pods, _ := pod.List(dataDir)
			for _, p := range pods {
				for _, img := range p.ImageIDs() {
					users[img] = append(users[img], p.UUID)
				}
			}
		}
		return users[id]
	}
}

func init() { register(newImageCommand) }

func newImageCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Operate on images in the local store",
		Long: `Operate on the images in the local store (<data dir>/cas) and their
rendered trees (<data dir>/tree). Commands taking an image accept its ID,
an unambiguous ID prefix (sha512- and at least 4 hex digits) or its name
with an optional :version.`,
		// With a Run and no arguments allowed, an unknown subcommand is
		// an error (exit 254) instead of a help text and exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newFetchCommand(g),
		newImageListCommand(g),
		newImageRmCommand(g),
		newImageCatManifestCommand(g),
		newImageExportCommand(g),
		newImageOutputCommand(g, "extract", "Extract an image, without its dependencies, to a directory",
			(*image.Store).Extract),
		newImageOutputCommand(g, "render", "Render an image with its dependencies to a directory",
			(*image.Store).RenderTo),
		newImageGCCommand(g),
		newImageVerifyCommand(g),
	)
	return cmd
}

func openImageStore(g *globalOptions, cmd *cobra.Command) (*image.Store, error) {
	dir, err := g.dataDir(cmd)
	if err != nil {
		return nil, err
	}
	return image.Open(dir)
}

// resolveStoredImage opens the store and resolves ref (ID, ID prefix or
// name[:version]) to an image ID, for the commands that take one image.
func resolveStoredImage(g *globalOptions, cmd *cobra.Command, ref string) (*image.Store, string, error) {
	s, err := openImageStore(g, cmd)
	if err != nil {
		return nil, "", err
	}
	id, err := s.Resolve(ref)
	return s, id, err
}

// imagesInUseFor is imagesInUse for the command's data directory.
func imagesInUseFor(g *globalOptions, cmd *cobra.Command) (image.InUseFunc, error) {
	dir, err := g.dataDir(cmd)
	if err != nil {
		return nil, err
	}
	return imagesInUse(dir), nil
}

func newImageRmCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove images, and their rendered trees, from the local store",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImageStore(g, cmd)
			if err != nil {
				return err
			}
			inUse, err := imagesInUseFor(g, cmd)
			if err != nil {
				return err
			}
			// Remove what can be removed and report every failure.
			var errs []error
			for _, ref := range args {
				id, err := s.Resolve(ref)
				if err == nil {
					err = s.Remove(id, inUse)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed image %s\n", id)
			}
			return errors.Join(errs...)
		},
	}
}

func newImageCatManifestCommand(g *globalOptions) *cobra.Command {
	var pretty bool
	cmd := &cobra.Command{
		Use:   "cat-manifest IMAGE",
		Short: "Print the manifest of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := resolveStoredImage(g, cmd, args[0])
			if err != nil {
				return err
			}
			im, err := s.Manifest(id)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), im, pretty)
		},
	}
	cmd.Flags().BoolVar(&pretty, "pretty-print", false, "indent the JSON output")
	return cmd
}

func newImageExportCommand(g *globalOptions) *cobra.Command {
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "export IMAGE OUT.aci",
		Short: "Write an image from the store to an uncompressed ACI file",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := resolveStoredImage(g, cmd, args[0])
			if err != nil {
				return err
			}
			return exportImage(s, id, args[1], overwrite)
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace OUT.aci if it exists")
	return cmd
}

// exportImage writes through a temporary file next to out, so an existing
// file is replaced only by a complete image.
func exportImage(s *image.Store, id, out string, overwrite bool) error {
	if _, err := os.Lstat(out); err == nil && !overwrite {
		return fmt.Errorf("%s already exists; remove it or use --overwrite", out)
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".rkt-export-")
	if err != nil {
		return fmt.Errorf("exporting to %s: %w", out, err)
	}
	defer os.Remove(f.Name())
	err = s.Export(id, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err != nil {
		return fmt.Errorf("exporting to %s: %w", out, err)
	}
	return nil
}

// newImageOutputCommand builds `image extract` and `image render`, which
// differ only in whether dependencies are applied.
func newImageOutputCommand(g *globalOptions, name, short string,
	write func(*image.Store, string, string, image.OutputOptions) error) *cobra.Command {
	var opts image.OutputOptions
	cmd := &cobra.Command{
		Use:   name + " IMAGE DIR",
		Short: short,
		Long: short + `.

Without --rootfs-only, DIR receives the image manifest and a rootfs/
directory; with it, DIR receives the contents of the root filesystem. DIR
must not exist or be empty unless --overwrite is given, and it is replaced
only once the image was written completely.`,
		Example: "  rkt image " + name + " --rootfs-only example.com/app:1.0 /tmp/app",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, id, err := resolveStoredImage(g, cmd, args[0])
			if err != nil {
				return err
			}
			return write(s.WithProgress(cmd.ErrOrStderr()), id, args[1], opts)
		},
	}
	cmd.Flags().BoolVar(&opts.RootfsOnly, "rootfs-only", false, "write only the root filesystem")
	cmd.Flags().BoolVar(&opts.Overwrite, "overwrite", false, "replace DIR if it exists and is not empty")
	return cmd
}

func newImageGCCommand(g *globalOptions) *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove images not used for the grace period, and store debris",
		Long: `Remove the images that no pod used within the grace period and that no
pod uses now, with their rendered trees, and clean up what interrupted
rkt processes left in the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openImageStore(g, cmd)
			if err != nil {
				return err
			}
			inUse, err := imagesInUseFor(g, cmd)
			if err != nil {
				return err
			}
			removed, err := s.GC(grace, inUse)
			for _, id := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed image %s\n", id)
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&grace, "grace-period", 24*time.Hour, "how long an unused image is kept after its last use")
	return cmd
}

// imageListEntry is an image in `image list --format=json`, with the field
// names of rkt's API (api/v1): times in nanoseconds since the epoch.
type imageListEntry struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ImportTime   int64  `json:"import_time"`
	LastUsedTime int64  `json:"last_used_time"`
	Size         int64  `json:"size"`
}

// shortImageIDLen keeps "sha512-" and 32 hex digits, as rkt's list does.
const shortImageIDLen = len("sha512-") + 32

func newImageListCommand(g *globalOptions) *cobra.Command {
	var (
		noLegend, full bool
		format         string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the images in the local store",
		Long: `List the images in the local store, oldest import first.

The table shows shortened IDs and relative times; --full shows whole IDs
and absolute times. --format=json or json-pretty prints an array of
objects with id, name, import_time and last_used_time (nanoseconds since
the epoch) and size (bytes).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && format != "json" && format != "json-pretty" {
				return fmt.Errorf("unknown --format %q (valid: json, json-pretty)", format)
			}
			s, err := openImageStore(g, cmd)
			if err != nil {
				return err
			}
			images, err := s.List()
			if err != nil {
				return err
			}
			if format != "" {
				return printImagesJSON(cmd.OutOrStdout(), images, format == "json-pretty")
			}
			return printImagesTable(cmd.OutOrStdout(), images, !noLegend, full, time.Now())
		},
	}
	cmd.Flags().BoolVar(&noLegend, "no-legend", false, "do not print the header line")
	cmd.Flags().BoolVar(&full, "full", false, "print whole image IDs and absolute times")
	cmd.Flags().StringVar(&format, "format", "", "print JSON instead of a table: json or json-pretty")
	return cmd
}

func printImagesJSON(w io.Writer, images []image.Image, pretty bool) error {
	entries := make([]imageListEntry, 0, len(images))
	for _, im := range images {
		entries = append(entries, imageListEntry{
			ID:           im.ID,
			Name:         im.Name,
			ImportTime:   im.ImportTime.UnixNano(),
			LastUsedTime: im.LastUsed.UnixNano(),
			Size:         im.Size,
		})
	}
	return printJSON(w, entries, pretty)
}

func printImagesTable(w io.Writer, images []image.Image, legend, full bool, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if legend {
		fmt.Fprintln(tw, "ID\tNAME\tSIZE\tIMPORT TIME\tLAST USED")
	}
	when := func(t time.Time) string { return timeAgo(now.Sub(t)) }
	if full {
		when = func(t time.Time) string { return t.Format(timeFormat) }
	}
	for _, im := range images {
		id, name := im.ID, im.Name
		if !full && len(id) > shortImageIDLen {
			id = id[:shortImageIDLen]
		}
		if v := im.Version(); v != "" {
			name += ":" + v
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, name, imageSize(im.Size), when(im.ImportTime), when(im.LastUsed))
	}
	return tw.Flush()
}

// imageSize prints a byte count with binary units, like "1.2MiB".
func imageSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	unit := ""
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		v /= 1024
		unit = u
		if v < 1024 {
			break
		}
	}
	return fmt.Sprintf("%.1f%s", v, unit)
}
