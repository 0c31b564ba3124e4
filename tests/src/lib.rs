//! Cross-crate and multi-process tests of giasync live in `tests/tests/`; this library holds
//! their shared helpers.
