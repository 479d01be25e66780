package aci

import "strings"

// ImageIDPrefix starts every image ID: the appc hash type of the ID.
const ImageIDPrefix = "sha512-"

// IsImageID reports whether s is "sha512-" followed by at least minHex and
// at most 128 lowercase hex digits: a full image ID, or a prefix of one.
func IsImageID(s string, minHex int) bool {
	hex, ok := strings.CutPrefix(s, ImageIDPrefix)
	if !ok || len(hex) < minHex || len(hex) > 128 {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
