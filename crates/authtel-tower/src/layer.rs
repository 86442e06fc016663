//! The layer and its service: one request context per request, in force while the
//! response future runs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use authtel_core::context::{RequestContext, TraceParent};
use http::header::{HeaderName, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::client_ip::{self, Cidr, CidrError, ForwardedHeader};
use crate::response::ResponseFuture;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The immediate peer's address, for servers that are not axum: insert it into each
/// request's extensions (or use [`RequestContextService::with_peer_addr`]).
///
/// ```
/// use authtel_tower::PeerAddr;
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(PeerAddr("192.0.2.1:4711".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

#[derive(Clone, Debug)]
struct Config {
    trusted: Vec<Cidr>,
    forwarded: ForwardedHeader,
    request_id_header: HeaderName,
    generate_request_id: bool,
    echo_request_id: bool,
}

/// A tower [`Layer`] that gives every request an authtel
/// [`RequestContext`](authtel_core::context::RequestContext): every event and span emitted
/// while the request is handled — across `.await` points and worker threads — carries the
/// client's address, user agent, request id and trace.
///
/// Defaults: no proxy is trusted (the peer is the client; forwarding headers are ignored),
/// the request id comes from `x-request-id` and none is generated.
///
/// ```
/// use authtel_tower::RequestContextLayer;
/// let layer = RequestContextLayer::new()
///     .trusted_proxies(["10.0.0.0/8", "fd00::/8"])?
///     .generate_request_id(true);
/// # let _ = layer;
/// # Ok::<(), authtel_tower::CidrError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RequestContextLayer {
    config: Arc<Config>,
}

impl Default for RequestContextLayer {
    fn default() -> Self {
        RequestContextLayer::new()
    }
}

impl RequestContextLayer {
    /// A layer trusting no proxy, reading `x-request-id`, generating no request id.
    pub fn new() -> RequestContextLayer {
        RequestContextLayer {
            config: Arc::new(Config {
                trusted: Vec::new(),
                forwarded: ForwardedHeader::default(),
                request_id_header: X_REQUEST_ID,
                generate_request_id: false,
                echo_request_id: false,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The proxies whose forwarding header is believed (addresses or CIDR networks): only
    /// when the immediate peer is in one of them is the header read, right to left,
    /// skipping hops in these networks too. Replaces any earlier list.
    ///
    /// ```
    /// use authtel_tower::RequestContextLayer;
    /// let err = RequestContextLayer::new().trusted_proxies(["10.0.0.0/40"]).unwrap_err();
    /// assert_eq!(err.value(), "10.0.0.0/40");
    /// ```
    pub fn trusted_proxies<I>(mut self, networks: I) -> Result<Self, CidrError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let trusted = networks
            .into_iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<Vec<Cidr>, _>>()?;
        self.config_mut().trusted = trusted;
        Ok(self)
    }

    /// Which forwarding header the trusted proxies write ([`ForwardedHeader::XForwardedFor`]
    /// by default). Only that one is read.
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.config_mut().forwarded = header;
        self
    }

    /// The header the request id is read from (`x-request-id` by default).
    ///
    /// ```
    /// use authtel_tower::RequestContextLayer;
    /// let layer = RequestContextLayer::new()
    ///     .request_id_header(http::HeaderName::from_static("x-correlation-id"));
    /// # let _ = layer;
    /// ```
    pub fn request_id_header(mut self, name: HeaderName) -> Self {
        self.config_mut().request_id_header = name;
        self
    }

    /// Whether to generate a request id (a UUIDv7) when the request has none, or an unusable
    /// one (empty, over 128 bytes, control characters). Off by default.
    pub fn generate_request_id(mut self, generate: bool) -> Self {
        self.config_mut().generate_request_id = generate;
        self
    }

    /// Whether to send the request id back in the response, under the same header (unless
    /// the service set that header itself). Off by default.
    ///
    /// ```
    /// use authtel_tower::RequestContextLayer;
    /// let layer = RequestContextLayer::new().generate_request_id(true).echo_request_id(true);
    /// # let _ = layer;
    /// ```
    pub fn echo_request_id(mut self, echo: bool) -> Self {
        self.config_mut().echo_request_id = echo;
        self
    }
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContextService<S>;

    fn layer(&self, inner: S) -> RequestContextService<S> {
        RequestContextService {
            inner,
            config: self.config.clone(),
            peer: None,
        }
    }
}

/// The service [`RequestContextLayer`] wraps around yours.
#[derive(Clone, Debug)]
pub struct RequestContextService<S> {
    inner: S,
    config: Arc<Config>,
    peer: Option<SocketAddr>,
}

impl<S> RequestContextService<S> {
    /// This service for one connection whose peer is `peer`: for hyper servers, which know
    /// the peer when they accept the connection. Takes precedence over request extensions.
    ///
    /// ```
    /// use authtel_tower::RequestContextLayer;
    /// use tower_layer::Layer;
    /// # let app = ();
    /// // After `let (stream, peer) = listener.accept().await?;`
    /// let peer = "192.0.2.1:4711".parse().unwrap();
    /// let per_connection = RequestContextLayer::new().layer(app).with_peer_addr(peer);
    /// # let _ = per_connection;
    /// ```
    pub fn with_peer_addr(mut self, peer: SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The context for a request with these headers and extensions, and the request id to
    /// echo in the response (when asked to).
    fn context_for(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> (RequestContext, Option<(HeaderName, HeaderValue)>) {
        let config = &self.config;
        let mut builder = RequestContext::builder();
        if let Some(peer) = self.peer.or_else(|| peer_addr(extensions)) {
            let client = client_ip::resolve(peer.ip(), headers, &config.trusted, config.forwarded);
            builder = builder.client_ip(client);
        }
        if let Some(ua) = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()) {
            builder = builder.user_agent(ua);
        }
        let id = headers
            .get(&config.request_id_header)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|id| usable_id(id));
        let mut echo = None;
        match id {
            Some(id) => {
                builder = builder.request_id(id);
                echo = HeaderValue::from_str(id).ok();
            }
            None if config.generate_request_id => {
                let id = uuid::Uuid::now_v7().to_string();
                builder = builder.request_id(&id);
                echo = HeaderValue::from_str(&id).ok();
            }
            None => {}
        }
        if let Some(tp) = headers
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| TraceParent::parse(v).ok())
        {
            builder = builder.trace_parent(tp);
        }
        let echo = echo
            .filter(|_| config.echo_request_id)
            .map(|v| (config.request_id_header.clone(), v));
        (builder.build(), echo)
    }
}

/// What the core keeps as a request id: non-empty, at most 128 bytes, no control characters.
fn usable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= authtel_core::policy::LIMITS.id_bytes
        && !id.chars().any(char::is_control)
}

/// The peer from request extensions: [`PeerAddr`], axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`), or a bare `SocketAddr`.
fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    extensions.get::<SocketAddr>().copied()
}

impl<S, B, R> Service<Request<B>> for RequestContextService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let (context, echo) = self.context_for(request.headers(), request.extensions());
        // Handlers can also read it as an extension (axum: `Extension<RequestContext>`).
        request.extensions_mut().insert(context.clone());
        // In force during `call` itself (services that do work before returning their
        // future) and during every poll of the response future.
        let future = context.in_scope(|| self.inner.call(request));
        ResponseFuture::new(context.scope(future), echo)
    }
}

/// The client address this layer would record for a peer and headers: for tests and for
/// code that needs the same answer outside a request.
///
/// ```
/// use authtel_tower::{client_ip_for, Cidr, ForwardedHeader};
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-forwarded-for", "198.51.100.7".parse()?);
/// let proxies: Vec<Cidr> = vec!["10.0.0.0/8".parse()?];
/// let from_proxy = client_ip_for("10.0.0.1".parse()?, &headers, &proxies, ForwardedHeader::XForwardedFor);
/// assert_eq!(from_proxy, "198.51.100.7".parse::<std::net::IpAddr>()?);
/// let spoofed = client_ip_for("203.0.113.9".parse()?, &headers, &proxies, ForwardedHeader::XForwardedFor);
/// assert_eq!(spoofed, "203.0.113.9".parse::<std::net::IpAddr>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn client_ip_for(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    header: ForwardedHeader,
) -> IpAddr {
    client_ip::resolve(peer, headers, trusted, header)
}
