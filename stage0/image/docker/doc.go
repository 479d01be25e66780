// Package docker fetches Docker v2 and OCI images, from registries
// (docker://), OCI image layouts (oci-layout:) and `docker save` archives
// (docker-archive:), with github.com/google/go-containerregistry, and
// converts each into an ACI in the image store, as the original rkt did
// with docker2aci: pods, rendering and every stage1 then treat it like any
// other image.
//
// # Conversion
//
// The layers are squashed into one root filesystem (aci.Squash: whiteouts
// honoured, the ACI path-safety policy applied to every entry) and the
// image configuration becomes the appc app: Entrypoint and Cmd the exec,
// Env, WorkingDir, User (resolved through the image's /etc/passwd and
// /etc/group), ExposedPorts the ports "<port>-<proto>", Volumes the mount
// points "volume-<path>". The manifest carries docker2aci's annotations
// (appc.io/docker/repository, registryurl, tag, imageid, manifesthash,
// entrypoint, cmd, originalname). A registry image is named after its
// registry and repository ("127.0.0.1-5000/library/busybox", appc names
// have no colons) with its tag as the version label.
//
// # Storage and pull policy
//
// The image is converted once per manifest digest: package remote records
// which image a digest (and a manifest list's digest) became, and which
// digest a reference last resolved to, so a fetch of a stored digest reads
// no layer and --pull-policy=new or never needs no network at all.
//
// # Safety
//
// Layers are verified twice: against their blob digests (by
// go-containerregistry for registries, here for layouts) and, once
// decompressed, against the diff IDs of the configuration, which the
// manifest digest covers. Layers download in parallel to temporary files
// under the store's cas/tmp, which are removed whatever happens; the image
// reaches the store only through Store.Import, which validates it again
// and commits it atomically, so a dropped connection or a corrupt layer
// leaves the store exactly as it was. Plain HTTP is used only for
// registries on the loopback interface unless the user allows it.
package docker
