package stage1

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

// Pod is a pod as a stage1 sees it: the manifest stage0 wrote, and for each
// app everything needed to start it, with volumes resolved to host paths.
type Pod struct {
	Dir      PodDir
	UUID     string
	Manifest *schema.PodManifest
	Apps     []App
}

// App is one app of a pod, ready to be handed to the supervisor.
type App struct {
	Name types.ACName
	// TreeRootfs is the read-only rendered image: the lower layer of the
	// app's writable root.
	TreeRootfs        string
	Exec              []string
	Env               []string
	User, Group       string
	SupplementaryGIDs []int
	WorkDir           string
	ReadOnlyRootFS    bool
	Mounts            []Mount
	Isolators         types.Isolators
}

// Mount is a volume mounted into an app, resolved to its backing path.
type Mount struct {
	Volume   types.ACName
	Kind     string // "host" or "empty"
	Source   string // host path: the volume's source, or the pod's shared volume dir
	Target   string // path inside the app
	ReadOnly bool
	// FromImage marks an empty volume stage0 made for a mount point the
	// image declares: it starts with the image's content at Target (see
	// AnnotationImageVolumes).
	FromImage bool
}

// LoadPod reads the pod manifest and the apps' image information from dir.
func LoadPod(dir PodDir, uuid string) (*Pod, error) {
	b, err := os.ReadFile(dir.Manifest())
	if err != nil {
		return nil, fmt.Errorf("reading pod manifest: %w", err)
	}
	pm := &schema.PodManifest{}
	if err := pm.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("invalid pod manifest %s: %w", dir.Manifest(), err)
	}
	p := &Pod{Dir: dir, UUID: uuid, Manifest: pm}
	vols := map[types.ACName]types.Volume{}
	for _, v := range pm.Volumes {
		vols[v.Name] = v
	}
	fromImage := map[string]bool{}
	if names, ok := pm.Annotations.Get(AnnotationImageVolumes); ok {
		for _, n := range strings.Split(names, ",") {
			fromImage[n] = true
		}
	}
	for _, ra := range pm.Apps {
		if ra.App == nil {
			return nil, fmt.Errorf("pod manifest: app %s has no app section", ra.Name)
		}
		tree, err := dir.AppTreeRootfs(ra.Name)
		if err != nil {
			return nil, err
		}
		a := App{
			Name:              ra.Name,
			TreeRootfs:        tree,
			Exec:              ra.App.Exec,
			User:              ra.App.User,
			Group:             ra.App.Group,
			SupplementaryGIDs: ra.App.SupplementaryGIDs,
			WorkDir:           ra.App.WorkingDirectory,
			ReadOnlyRootFS:    ra.ReadOnlyRootFS,
			Isolators:         append(types.Isolators{}, ra.App.Isolators...),
		}
		for _, ev := range ra.App.Environment {
			a.Env = append(a.Env, ev.Name+"="+ev.Value)
		}
		for _, m := range ra.Mounts {
			v, ok := vols[m.Volume]
			if !ok {
				return nil, fmt.Errorf("pod manifest: app %s mounts unknown volume %s", ra.Name, m.Volume)
			}
			mt := Mount{Volume: v.Name, Kind: v.Kind, Target: path.Clean("/" + m.Path), ReadOnly: v.ReadOnly != nil && *v.ReadOnly}
			switch v.Kind {
			case "host":
				mt.Source = v.Source
			case "empty":
				mt.Source = dir.SharedVolume(v.Name)
				mt.FromImage = fromImage[v.Name.String()]
			default:
				return nil, fmt.Errorf("pod manifest: volume %s has unsupported kind %q", v.Name, v.Kind)
			}
			a.Mounts = append(a.Mounts, mt)
		}
		p.Apps = append(p.Apps, a)
	}
	return p, nil
}

// ExitCode is the pod's exit code from its apps' codes, in manifest order:
// the single app's code, or the first failing app's code, or 0.
func ExitCode(codes []int) int {
	for _, c := range codes {
		if c != 0 {
			return c
		}
	}
	return 0
}
