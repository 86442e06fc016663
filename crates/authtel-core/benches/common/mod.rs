//! What the core benches and their plain-loop twin (`examples/emit_loop.rs`) share.

use std::hint::black_box;

/// The user id, read from memory the way a service reads it from its session or request.
/// (`black_box("u_42")` instead would force the fat pointer through two 8-byte stores right
/// before the setter copies it with one 16-byte load: a store-forwarding stall that is an
/// artefact of `black_box`, not a cost real callers pay.)
static USER_ID: &str = "u_42";

/// [`USER_ID`], loaded through an opaque pointer so the compiler cannot fold it.
#[inline(always)]
pub(crate) fn user_id() -> &'static str {
    let id: &&'static str = black_box(&USER_ID);
    id
}
