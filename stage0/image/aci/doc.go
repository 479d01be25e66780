// Package aci reads App Container Images (appc spec): it detects their
// compression, validates their layout and manifest, and extracts them
// without ever writing outside the target directory.
//
// An ACI is a tar archive whose only top-level entries are "manifest" (the
// image manifest, a regular file) and "rootfs/" (the root filesystem), with
// no duplicate entries. A leading "./" on names is accepted, as is a "./"
// entry for the archive root, because `tar -C dir -cf img.aci .` is a common
// way to build an image.
//
// # Safety policy
//
// The same checks run when an image is imported (so a bad image is never
// stored) and again whenever it is extracted (so a blob damaged on disk
// cannot do harm either). An entry is refused, and the error names it, when:
//
//   - its name is absolute or has a ".." component;
//   - it is a symlink whose relative target climbs above the image's rootfs
//     (resolved lexically from the link's directory). Absolute targets such
//     as /bin/sh -> /bin/busybox are allowed: they are interpreted inside
//     the container's root, and extraction never follows a symlink;
//   - it is a hard link whose target is not an earlier regular file under
//     rootfs/;
//   - a parent directory of it was created by the archive as a symlink or a
//     non-directory (writing "rootfs/a/passwd" after "rootfs/a -> /etc"), or
//     it replaces a directory implied by earlier entries;
//   - it is a character or block device (device nodes in an image would give
//     the container access to host devices), a GNU sparse file (its holes
//     would expand a tiny image into huge files), or of a type this package
//     does not know.
//
// FIFOs are allowed. Permission bits including setuid, setgid and sticky
// are kept, modification times are applied, and ownership (numeric uid and
// gid) is applied only when running as root. Extended attributes are not
// applied.
//
// Extraction walks every path one component at a time with openat(2) and
// O_NOFOLLOW, so it never follows a symlink, whether it came from the
// archive, from an earlier layer or was already in the target directory.
// When a directory is needed where a symlink or a file exists, that entry is
// replaced, which is the appc rule for layering dependencies: later layers
// overwrite earlier ones and symlinks are not followed.
package aci
