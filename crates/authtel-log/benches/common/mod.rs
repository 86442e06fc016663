//! What the logger bench compares, shared with `tests/bench_baseline_lines.rs`, which checks
//! that each authtel case and its baseline write the same JSON line.
//!
//! The baselines are `tracing` as its users write it: plain `&str`, integer and float field
//! values (no `field::display`, which makes the JSON formatter build a `String` per field),
//! one `info!`/`warn!` per event. The `display_fields` variant is the heavier style the
//! bench used first, kept as an extra row.

#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr};

use authtel_core::catalogue::SECURITY_SUSPICIOUS_LOGIN;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, Measurements};
use tracing_subscriber::fmt::MakeWriter;

/// The address every case logs.
pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// The span and root id the baselines write (authtel's cases write fresh ones of the same
/// form: 16 lowercase hex digits).
pub const SPAN_ID: &str = "5f3a9c0d1e2b4a68";

/// The fields every case logs, built inside each iteration as an auth service builds them
/// per request.
#[inline(always)]
pub fn login_metadata() -> Metadata<'static> {
    Metadata::new()
        .user_id("u_42")
        .session_id("s_9f2c")
        .client_ip(CLIENT_IP)
        .method("password")
        .provider("local")
        .with_extra("tenant", "acme")
}

/// The bench's subscriber: `tracing_subscriber::fmt` JSON, fields flattened into the line.
/// `with_time(false)` only for the tests (timestamps differ between two lines).
pub fn json_subscriber<W>(writer: W, with_time: bool) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(writer);
    if with_time {
        tracing::Dispatch::new(builder.finish())
    } else {
        tracing::Dispatch::new(builder.without_time().finish())
    }
}

/// authtel: one signal with the login fields, through the registry in scope.
#[inline(always)]
pub fn authtel_signal() {
    let meta = login_metadata().outcome(Outcome::Success);
    telemetry::event(
        std::hint::black_box(&SECURITY_SUSPICIOUS_LOGIN),
        Measurements::new(),
        meta,
    );
}

/// Baseline for [`authtel_signal`]: the same line, written with `tracing::warn!` and plain
/// values, field for field in the logger's order.
#[inline(always)]
pub fn tracing_signal() {
    tracing::warn!(
        target: "authtel::security",
        event = "security.suspicious_login",
        outcome = "success",
        span_id = SPAN_ID,
        root_id = SPAN_ID,
        user_id = "u_42",
        session_id = "s_9f2c",
        client_ip = "203.0.113.7",
        provider = "local",
        method = "password",
        extra = "tenant=acme",
    );
}

/// Baseline for the login span's stop line: the same fields as the logger writes for
/// `auth.login.stop` (a span's `duration_ms` varies; the baseline logs a fixed one).
#[inline(always)]
pub fn tracing_span_stop(duration_ms: f64) {
    tracing::info!(
        target: "authtel::auth",
        event = "auth.login.stop",
        outcome = "success",
        duration_ms = duration_ms,
        span_id = SPAN_ID,
        root_id = SPAN_ID,
        user_id = "u_42",
        session_id = "s_9f2c",
        client_ip = "203.0.113.7",
        provider = "local",
        method = "password",
        extra = "tenant=acme",
    );
}

/// The heavier style the bench first used as its baseline: ids and the address through
/// `tracing::field::display`, which the JSON formatter turns into a `String` each. An extra
/// row, not the comparison's baseline.
#[inline(always)]
pub fn tracing_signal_display_fields() {
    tracing::warn!(
        target: "authtel::security",
        event = "security.suspicious_login",
        outcome = "success",
        span_id = tracing::field::display(SPAN_ID),
        root_id = tracing::field::display(SPAN_ID),
        user_id = "u_42",
        session_id = "s_9f2c",
        client_ip = tracing::field::display(CLIENT_IP),
        provider = "local",
        method = "password",
        extra = "tenant=acme",
    );
}
