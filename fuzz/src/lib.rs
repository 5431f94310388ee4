//! Fuzzing harness of PhantomDB (see `harness`).
pub mod harness;
