//! `ImportImage`: a rootfs tarball becomes a one-layer image (image-service.md §5.2).
//! (Being built; see issue 3.)
