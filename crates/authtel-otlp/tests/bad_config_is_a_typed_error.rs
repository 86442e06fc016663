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
