//! The school node. Empty so far: its store (redb), QUIC drivers and the `giasync-node` binary
//! arrive with the sync issue; the web UI with the school UI issue.
