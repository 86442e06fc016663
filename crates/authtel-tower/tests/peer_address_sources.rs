//! Where the layer finds the immediate peer, for axum and for plain tower/hyper services,
//! and that with no peer known nothing (not even a forwarding header) becomes the client.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use authtel_core::context::RequestContext;
use authtel_tower::{PeerAddr, RequestContextLayer};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

/// A plain tower service (no framework): answers with the client address its context holds,
/// read both as the current context and as the request extension the layer inserted.
#[derive(Clone)]
struct Echo;

impl Service<Request<()>> for Echo {
    type Response = Response<(Option<IpAddr>, Option<IpAddr>)>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let current = RequestContext::current().and_then(|c| c.client_ip());
        let extension = request
            .extensions()
            .get::<RequestContext>()
            .and_then(|c| c.client_ip());
        ready(Ok(Response::new((current, extension))))
    }
}

fn call(
    layer: &RequestContextLayer,
    peer: Option<SocketAddr>,
    request: Request<()>,
) -> (Option<IpAddr>, Option<IpAddr>) {
    let mut svc = layer.layer(Echo);
    if let Some(peer) = peer {
        svc = svc.with_peer_addr(peer);
    }
    let mut fut = std::pin::pin!(svc.call(request));
    match fut
        .as_mut()
        .poll(&mut Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(Ok(out)) => out.into_body(),
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("Echo answers at once"),
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn with_extension<T: Clone + Send + Sync + 'static>(value: T) -> Request<()> {
    let mut request = Request::new(());
    request.extensions_mut().insert(value);
    request
}

#[test]
fn every_peer_source_is_read_and_the_connection_peer_wins() {
    let layer = RequestContextLayer::new();
    let addr: SocketAddr = "192.0.2.1:4711".parse().unwrap();
    assert_eq!(
        call(&layer, None, with_extension(PeerAddr(addr))),
        (ip("192.0.2.1"), ip("192.0.2.1"))
    );
    assert_eq!(
        call(
            &layer,
            None,
            with_extension(axum::extract::ConnectInfo(addr))
        ),
        (ip("192.0.2.1"), ip("192.0.2.1"))
    );
    assert_eq!(
        call(&layer, None, with_extension(addr)),
        (ip("192.0.2.1"), ip("192.0.2.1"))
    );
    // hyper: the peer the listener accepted, given per connection, wins over extensions.
    let accepted: SocketAddr = "[2001:db8::5]:443".parse().unwrap();
    assert_eq!(
        call(&layer, Some(accepted), with_extension(PeerAddr(addr))),
        (ip("2001:db8::5"), ip("2001:db8::5"))
    );
    // An IPv4 client through a dual-stack socket is recorded as IPv4.
    let mapped: SocketAddr = "[::ffff:198.51.100.3]:80".parse().unwrap();
    assert_eq!(
        call(&layer, Some(mapped), Request::new(())).0,
        ip("198.51.100.3")
    );
}

#[test]
fn with_no_peer_known_no_address_is_recorded_even_from_a_forwarding_header() {
    // Trusting everything does not help a header that no known peer vouches for.
    let layer = RequestContextLayer::new()
        .trusted_proxies(["0.0.0.0/0", "::/0"])
        .unwrap();
    let request = Request::builder()
        .header("x-forwarded-for", "198.51.100.9")
        .body(())
        .unwrap();
    assert_eq!(call(&layer, None, request), (None, None));
    assert!(RequestContext::current().is_none());
}
