//! TEMPORARY stub, replaced by the breaker module.
/// Stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /** s */
    Success,
    /** f */
    Failure,
    /** i */
    Ignored,
}
