//! Test support for roomstate: a naive reference model of the engine's
//! semantics and the generators that drive engine and model side by side.

pub mod follower;
pub mod fuzzing;
pub mod gen;
pub mod model;
pub mod sim;
