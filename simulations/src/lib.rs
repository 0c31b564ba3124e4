//! The region simulator. Empty so far: `giasync-sim` arrives with the simulator issue and drives
//! the same sans-IO engine as production over a simulated network and clock.
