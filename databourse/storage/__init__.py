"""Object storage: one interface, the local-disk and S3 stores, and the zones' keys.

Modules:
    local
        LocalStore: the ObjectStore on a local folder, with crash-safe atomic writes.
    opening
        Opening a store from its root: an `s3://bucket/prefix` URI, a `file://` URI or a folder.
    ranges
        Reading parts of an object, each block checked against the hashes of a trusted read.
    s3
        S3Store: the ObjectStore on an S3 bucket and prefix (AWS or any S3-compatible endpoint).
    store
        Object storage: one `ObjectStore` interface, a local-disk store and an S3 store.
    zones
        Object keys of the storage zones: deterministic from names, hashes and versions.
"""
