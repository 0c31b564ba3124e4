//! The region's PKI. Empty so far: the CA, node and person certificates and the `giasync-certs`
//! binary arrive with the PKI issue.
