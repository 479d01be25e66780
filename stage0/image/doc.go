// Package image is rkt's image store: the content-addressed store of ACI
// images (CAS) and the tree store of their rendered root filesystems.
//
// # Layout
//
// Under the rkt data directory:
//
//	cas/lock                              store-wide flock (see Locking)
//	cas/blob/sha512/<2 hex>/<id>          the image, an uncompressed ACI tar
//	cas/imageManifest/sha512/<2 hex>/<id> its manifest, as found in the image
//	cas/index/<id>.json                   its index record (type Image)
//	cas/signed/sha512/<2 hex>/<sha512-…>  the compressed file a signed image
//	                                      was fetched as (see ImportSigned)
//	cas/tmp/                              imports in progress
//	cas/treelocks/<treeStoreID>           one flock per rendered tree
//	tree/<treeStoreID>/rootfs             a rendered image with its dependencies
//	tree/<treeStoreID>/manifest           the manifest of the rendered image
//	tree/<treeStoreID>/rendered           marker and record (type tree)
//	tree/tmp/                             renders in progress
//
// An image ID is "sha512-" and the 128 hex digits of the SHA-512 of the
// uncompressed tar, as the appc spec defines it. Blobs are stored
// uncompressed, exactly the bytes that were hashed: a blob can be verified
// against its name at any time, rendering needs no decompression, and
// export writes it as it is.
//
// A signature covers the file as published, though, which is often
// compressed. So that `rkt image verify` can check it again at any time
// against the trust store as it is then, a signed image keeps its
// signature in its record and, when it was fetched compressed, that
// compressed file too, named by its own SHA-512 and checked to decompress
// to the image (see ReadSigned). Nothing is kept for images fetched
// without verification.
//
// # Consistency
//
// Every file is written to a temporary name and renamed into place, so a
// reader sees a whole file or none. The index record is written last on
// import and removed first on removal: an image exists exactly when its
// record does, and readers (List, Resolve, Manifest) take no lock. Blobs,
// manifests or signed files left without a record by a crash are removed
// by GC.
//
// # Locking
//
// cas/lock is taken exclusively by everything that changes the CAS
// (committing an import, Remove, GC, MarkUsed, recording a tree) and
// shared by rendering, for as long as it reads images, so an image cannot
// vanish while it is being rendered and GC never meets a render in
// progress. Imports stream and validate without the lock and take it only
// to commit. Each tree also has its own lock so concurrent rkt processes
// rendering the same image do it once; the others wait and reuse the
// result. Locks are always taken in that order: cas/lock, then a tree lock.
//
// # Rendering
//
// Render applies an image's dependencies depth-first in the order listed,
// then the image itself; later layers overwrite earlier ones and symlinks
// are never followed (see package aci). A file of a layer is kept only if
// every non-empty pathWhitelist of that layer and of the images that
// depend on it, on the path from the rendered image, lists it; a directory
// is kept if it is listed or holds a listed path. The tree store ID,
// "deps-sha512-" and a hash of the ordered layer IDs and their depths,
// names the result, so the same chain is rendered once and a changed
// dependency gets a new tree.
package image
