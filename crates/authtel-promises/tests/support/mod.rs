//! Shared by the promise tests: secrets and forms, positions, every sink, the search.
#![allow(dead_code, unreachable_pub)]

pub mod canary;
pub mod legit;
pub mod needles;
pub mod plant;
pub mod secrets;
pub mod sinks;
