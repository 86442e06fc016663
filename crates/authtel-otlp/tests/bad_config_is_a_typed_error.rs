//! Bad configuration is a typed error that names the value, never a panic.

use authtel_otlp::{BuildError, OtlpSink, Protocol};

#[test]
fn bad_config_is_a_typed_error() {
    let err = OtlpSink::builder()
        .with_protocol(Protocol::HttpProtobuf)
        .with_endpoint("collector:4318")
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::InvalidEndpoint(e) if e == "collector:4318"));
    assert!(err.to_string().contains("http://collector:4317"), "{err}");

    let err = OtlpSink::builder()
        .with_protocol(Protocol::HttpProtobuf)
        .with_endpoint("http://127.0.0.1:1")
        .with_headers([("x-api-key", "line\nbreak-s3cr3t")])
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::InvalidHeader { name } if name == "x-api-key"));
    assert!(
        !err.to_string().contains("s3cr3t"),
        "header values are never shown"
    );

    let err = Protocol::from_env_value("http/json").unwrap_err();
    assert!(matches!(&err, BuildError::UnsupportedProtocol(p) if p == "http/json"));
    assert!(err.to_string().contains("grpc"));
}

#[test]
fn https_endpoints_are_refused_naming_the_missing_tls() {
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let err = OtlpSink::builder()
            .with_protocol(protocol)
            .with_endpoint("https://collector.example:4318")
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::TlsNotCompiled { endpoint } if endpoint == "https://collector.example:4318"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("built without") && text.contains("TLS"),
            "{text}"
        );
        assert!(text.contains("http://"), "says what to do instead: {text}");
    }
}

#[test]
fn builder_debug_output_never_shows_header_values() {
    let builder = OtlpSink::builder()
        .with_endpoint("http://127.0.0.1:4318")
        .with_headers([
            ("authorization", "Bearer s3cr3t-token"),
            ("x-api-key", "k3y-value"),
        ]);
    let shown = format!("{builder:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("k3y-value"),
        "{shown}"
    );
    assert!(
        shown.contains("authorization") && shown.contains("x-api-key"),
        "{shown}"
    );
}
