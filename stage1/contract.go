// Package stage1 is the contract between stage0 (the rkt binary) and every
// stage1 flavor (fly, nspawn, kvm).
//
// It owns three things and nothing else knows them: the names of the
// entrypoint annotations a stage1 image carries, the command-line flags
// stage0 passes to each entrypoint (rendered and parsed in one place, so the
// two sides cannot drift), and the layout of a pod directory (PodDir). A
// flavor differs from another only in how it isolates; what it reads and
// writes in the pod directory is fixed here.
//
// stage0 links this package, so it must not import the supervisor: what the
// flavors share around it (converting apps and isolators, the run loop,
// enter) is in rkt.dev/rkt/stage1/apprun.
package stage1

// Annotation names in a stage1 image manifest. Each names the path, inside
// the stage1 rootfs, of a binary stage0 executes. The names are the original
// rkt ones so that the interface stays recognisable.
const (
	AnnotationRun              = "coreos.com/rkt/stage1/run"
	AnnotationEnter            = "coreos.com/rkt/stage1/enter"
	AnnotationStop             = "coreos.com/rkt/stage1/stop"
	AnnotationGC               = "coreos.com/rkt/stage1/gc"
	AnnotationInterfaceVersion = "coreos.com/rkt/stage1/interface-version"
	// AnnotationFlavor is rkt.dev's addition: the short flavor name
	// ("fly", "nspawn", "kvm") shown by rkt and used by `--stage1-name=fly`.
	AnnotationFlavor = "rkt.dev/rkt/stage1/flavor"
)

// AnnotationImageVolumes is the pod manifest annotation in which stage0
// names (comma-separated) the empty volumes it made for mount points an
// image declares and no --volume provides. A stage1 fills each, while still
// empty, with what the image has at the mount point, as Docker and rkt do
// for an image's VOLUME.
const AnnotationImageVolumes = "rkt.dev/rkt/image-volumes"

// InterfaceVersion is the version of this contract. Stage1 images built from
// this tree declare it; stage0 refuses images that declare a higher one.
const InterfaceVersion = 6

// Environment variables stage0 sets for stage1 entrypoints.
const (
	// EnvLockFD carries the descriptor number of the pod directory lock.
	// The run entrypoint keeps it open for the pod's whole life: when the
	// last holder exits, the lock is released and the pod reads "exited".
	EnvLockFD = "RKT_LOCK_FD"
	// EnvDataDir is the rkt data directory (--dir), so a stage1 can find
	// the tree store without guessing from the pod path.
	EnvDataDir = "RKT_DATA_DIR"
)

// ImageNamePrefix is the prefix of the built-in stage1 image names:
// rkt.dev/rkt/stage1-<flavor>.
const ImageNamePrefix = "rkt.dev/rkt/stage1-"

// Flavors lists the built-in flavors, in the order rkt documents them.
var Flavors = []string{"kvm", "nspawn", "fly"}
