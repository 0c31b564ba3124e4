//! The school node: mutually authenticated QUIC between nodes (`transport`) and the readiness
//! check (`doctor`). The store (redb), the sync drivers and `giasync-node run` arrive with the
//! sync issue; the web UI with the school UI issue. Hubs reuse all of it.

pub mod transport;
