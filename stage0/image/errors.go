package image

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is matched (errors.Is) by the error for an image reference
// that names no stored image, so callers can decide to fetch it.
var ErrNotFound = errors.New("image not found")

type notFoundError struct{ ref string }

func (e notFoundError) Error() string {
	return fmt.Sprintf("image %q not found in the store; fetch it first with 'rkt fetch'", e.ref)
}

func (e notFoundError) Is(target error) bool { return target == ErrNotFound }

// InUseError is returned when removing an image that pods still use.
type InUseError struct {
	// ID is the image that was to be removed.
	ID string
	// Pods are the UUIDs of the pods using it.
	Pods []string
	// Via is the image the pods use, when it is not ID itself but an image
	// rendered on top of it.
	Via string
}

func (e *InUseError) Error() string {
	via := ""
	if e.Via != "" {
		via = " through image " + e.Via
	}
	return fmt.Sprintf("image %s is used by pod(s) %s%s; remove the pods first", e.ID, strings.Join(e.Pods, ", "), via)
}
