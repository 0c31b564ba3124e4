//! Why the engine closes a connection ([`super::Output::Close`]).
//!
//! Each reason is one thing the peer did; the text a driver logs and sends with QUIC's close is
//! its `Display`, written once here. A driver or the simulator that needs to know why matches on
//! the variant, never on the text.

use super::wire::WireError;

/// Why the engine closes a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The peer connected in a wire version this node does not speak.
    #[error("wire version {0} is not spoken here")]
    WireVersion(u8),
    /// A newer connection from the same node replaced this one (it reconnected before this one
    /// timed out).
    #[error("replaced by a newer connection from the same node")]
    Replaced,
    /// A frame that does not decode, or not in the wire version agreed for the connection.
    #[error(transparent)]
    Malformed(WireError),
    /// A fragment claiming more parts than the largest frame needs.
    #[error("a frame in more fragments than the largest frame needs")]
    FragmentsPastFrameMax,
    /// More bytes of unfinished fragmented frames than a peer may hold.
    #[error("more unfinished fragments than allowed")]
    FragmentBytes,
    /// More unfinished fragmented frames than a peer may hold.
    #[error("more unfinished fragmented frames than allowed")]
    FragmentedFrames,
    /// Fragments of one frame that disagree on how many parts it has.
    #[error("inconsistent fragments")]
    InconsistentFragments,
    /// A frame made whole from fragments that is itself a fragment.
    #[error("nested fragments")]
    NestedFragments,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts drivers log and send are the ones written out here (operators grep logs for
    /// them).
    #[test]
    fn each_reason_reads_as_written() {
        let cases = [
            (
                CloseReason::WireVersion(3),
                "wire version 3 is not spoken here",
            ),
            (
                CloseReason::Replaced,
                "replaced by a newer connection from the same node",
            ),
            (
                CloseReason::Malformed(WireError {
                    at: 5,
                    reason: "short",
                }),
                "malformed frame at byte 5: short",
            ),
            (
                CloseReason::FragmentsPastFrameMax,
                "a frame in more fragments than the largest frame needs",
            ),
            (
                CloseReason::FragmentBytes,
                "more unfinished fragments than allowed",
            ),
            (
                CloseReason::FragmentedFrames,
                "more unfinished fragmented frames than allowed",
            ),
            (CloseReason::InconsistentFragments, "inconsistent fragments"),
            (CloseReason::NestedFragments, "nested fragments"),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }
}
