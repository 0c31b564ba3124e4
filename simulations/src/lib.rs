//! Rehearsing exam day. So far: the demo region (`demo`), separate processes on loopback QUIC.
//! The deterministic region simulator (`giasync-sim run`, `sweep`) comes with the simulator issue
//! and will drive the same sans-IO engine over a simulated network and clock.

pub mod demo;
