package aci

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/appc/spec/schema"
)

// maxManifestSize bounds the manifest read into memory. Real manifests are
// a few kilobytes; the bound keeps a hostile image from exhausting memory.
const maxManifestSize = 1 << 20

// ParseManifest decodes an image manifest and validates it with the appc
// schema, plus the fields rkt relies on later: whitelist paths must be
// absolute and dependency image IDs must be sha512 IDs, so that rendering
// never has to interpret a malformed value.
func ParseManifest(data []byte) (*schema.ImageManifest, error) {
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errManifest, maxManifestSize)
	}
	// appc's own syntax errors span several lines; report a short one.
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: not valid JSON at byte %d: %v", errManifest, se.Offset, se)
		}
		return nil, fmt.Errorf("%w: %v", errManifest, err)
	}
	im, err := unmarshalManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errManifest, err)
	}
	// appc checks some fields only when encoding (a label without a
	// name passes decoding); rkt encodes manifests into pods and prints
	// them, so a manifest that cannot be encoded is refused now.
	if _, err := json.Marshal(im); err != nil {
		return nil, fmt.Errorf("%w: %v", errManifest, innermost(err))
	}
	if im.ACVersion.LessThanMajor(schema.AppContainerVersion) {
		return nil, fmt.Errorf("%w: acVersion %s is older than the supported %s", errManifest, im.ACVersion, schema.AppContainerVersion)
	}
	for _, p := range im.PathWhitelist {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("%w: pathWhitelist entry %q is not an absolute path", errManifest, p)
		}
	}
	for _, d := range im.Dependencies {
		if d.ImageID != nil && !d.ImageID.Empty() && !IsImageID(d.ImageID.String(), 1) {
			return nil, fmt.Errorf("%w: dependency %s: imageID %q is not a sha512 image ID", errManifest, d.ImageName, d.ImageID)
		}
	}
	return im, nil
}

// unmarshalManifest is appc's decoder made safe for hostile input: appc
// v0.8.11 dereferences a nil pointer on an isolator without a "value"
// (found by FuzzManifest), and an image must never crash rkt.
func unmarshalManifest(data []byte) (im *schema.ImageManifest, err error) {
	defer func() {
		if r := recover(); r != nil {
			im, err = nil, fmt.Errorf("malformed manifest (%v)", r)
		}
	}()
	im = new(schema.ImageManifest)
	if err := im.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return im, nil
}

// innermost strips encoding/json's "error calling MarshalJSON for type"
// wrappers, one per nesting level, down to appc's own message.
func innermost(err error) error {
	var me *json.MarshalerError
	for errors.As(err, &me) {
		err = me.Err
	}
	return err
}
