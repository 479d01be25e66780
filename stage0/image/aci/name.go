package aci

import (
	"fmt"
	"path"
	"strings"
)

// Limits of Linux path names. Checking them at import means an image that
// could never be extracted is never stored.
const (
	maxComponent = 255
	maxPath      = 4095
)

// cleanName turns a tar entry name into a clean path relative to the
// archive root ("rootfs/etc/passwd"), or "." for the root itself. It
// refuses what could point outside the root; the check is on the raw
// components because path.Clean would silently resolve "a/../.." first.
func cleanName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", fmt.Errorf("%w: empty name", errBadEntry)
	case strings.ContainsRune(raw, 0):
		return "", fmt.Errorf("%w: name contains a NUL byte", errBadEntry)
	case len(raw) > maxPath:
		return "", fmt.Errorf("%w: name longer than %d bytes", errBadEntry, maxPath)
	case strings.HasPrefix(raw, "/"):
		return "", errAbsolutePath
	}
	for c := range strings.SplitSeq(raw, "/") {
		if c == ".." {
			return "", errPathEscapes
		}
		if len(c) > maxComponent {
			return "", fmt.Errorf("%w: a path component is longer than %d bytes", errBadEntry, maxComponent)
		}
	}
	return path.Clean(raw), nil
}

// symlinkEscapes reports whether a relative symlink target, resolved
// lexically from the directory of the link, climbs above the rootfs.
// linkName is the clean archive name of the link ("rootfs/usr/lib/x").
func symlinkEscapes(linkName, target string) bool {
	// The link's directory, counted in components below rootfs/.
	depth := strings.Count(linkName, "/") - 1
	for c := range strings.SplitSeq(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
