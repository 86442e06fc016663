//! authtel-tower: a tower layer that sets authtel's
//! [request context](authtel_core::context) for every HTTP request.
//!
//! Every event and span an auth service emits while handling a request — a login span, a
//! lockout signal, an authorization decision, deep inside a helper that never saw the
//! request — then carries the request's client address, user agent, request id and trace,
//! with no argument threaded through. A call site that sets a field itself still wins.
//!
//! What the layer reads:
//! - **Client address**: the immediate peer — axum's `ConnectInfo<SocketAddr>` (feature
//!   `axum`), a [`PeerAddr`] extension, a bare `SocketAddr` extension, or the peer given to
//!   [`RequestContextService::with_peer_addr`] (hyper). `X-Forwarded-For` (or `Forwarded`,
//!   see [`ForwardedHeader`]) is read **only when that peer is a trusted proxy**
//!   ([`RequestContextLayer::trusted_proxies`]; none by default), right to left, skipping
//!   trusted hops: a header forged by a client never becomes the recorded address, and a
//!   malformed one is ignored. No peer known: no address recorded.
//! - **User agent**: `User-Agent`, bounded and screened by authtel's policy like any text.
//! - **Request id**: `x-request-id` (configurable), optionally generated when absent and
//!   echoed in the response ([`RequestContextLayer::echo_request_id`]).
//! - **Trace**: a W3C `traceparent`; audit records then carry its trace id.
//!
//! The response future runs inside the context, so handlers' events inherit it across
//! `.await` points, whichever worker thread polls them. The context is also inserted into
//! the request's extensions.
//!
//! # With axum
//! ```
//! use std::net::SocketAddr;
//! use authtel_tower::RequestContextLayer;
//! use axum::{Router, routing::post};
//!
//! async fn login() -> &'static str {
//!     // telemetry::span_async(&catalogue::AUTH_LOGIN, Metadata::new().user_id(..), ..)
//!     // records the client IP, user agent and request id without being told them.
//!     "ok"
//! }
//!
//! async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//!     let app = Router::new()
//!         .route("/login", post(login))
//!         .layer(RequestContextLayer::new().trusted_proxies(["10.0.0.0/8"])?);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     // `with_connect_info` is what lets the layer see the peer address.
//!     axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//!     Ok(())
//! }
//! # drop(serve());
//! ```
//!
//! # With hyper (or any tower server)
//! Wrap the service per connection with the peer the listener accepted:
//! `RequestContextLayer::new().layer(app).with_peer_addr(peer)`, or insert
//! [`PeerAddr`]`(peer)` into each request's extensions before the layer.
//!
//! # Feature flags
//! - `axum` (default): read the peer from axum's `ConnectInfo<SocketAddr>`. Depends on axum
//!   with only its `tokio` feature (where axum defines that type; every axum server has it).
//!   Without it the crate needs only `http`, `tower-layer` and `tower-service`.
//!
//! # Supported Rust versions
//! 1.94 and newer.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client_ip;
mod layer;
mod response;

pub use client_ip::{Cidr, CidrError, ForwardedHeader};
pub use layer::{PeerAddr, RequestContextLayer, RequestContextService, client_ip_for};
pub use response::ResponseFuture;
