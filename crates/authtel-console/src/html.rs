//! HTML output: one escaping function every dynamic value goes through, and the page
//! layout. Pages are built as strings; no template engine, no inline script or style (the
//! CSP forbids both), so the JS and CSS are served as files under `/assets/`.

use std::fmt::Write as _;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `s` with `& < > " '` replaced by entities: safe in element text and in quoted
/// attribute values.
///
/// ```
/// # use authtel_console::__private::escape;
/// assert_eq!(escape("<script>alert('x')</script>&\""), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` percent-encoded for a URL query value.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An HTML response body.
#[derive(Debug)]
pub(crate) struct Html(pub(crate) String);

/// The navigation: path under the base, label.
const NAV: [(&str, &str); 5] = [
    ("/", "Live stream"),
    ("/search", "Search"),
    ("/timeline", "Timeline"),
    ("/outbox", "Outbox"),
    ("/detections", "Detections"),
];

impl Html {
    /// A full page titled `title`, links under `base`, around `body` (already escaped).
    pub(crate) fn page(title: &str, base: &str, body: &str) -> Html {
        let mut nav = String::new();
        for (path, label) in NAV {
            let _ = write!(nav, "<a href=\"{}{path}\">{label}</a> ", escape(base));
        }
        let base = escape(base);
        Html(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>authtel console: {}</title>\
             <link rel=\"stylesheet\" href=\"{base}/assets/console.css\">\
             <script src=\"{base}/assets/console.js\" defer></script></head>\
             <body><nav>{nav}</nav><main>{body}</main></body></html>\n",
            escape(title)
        ))
    }
}

impl Html {
    /// A page with no navigation, script or stylesheet: error pages, which do not know
    /// where the console is mounted.
    pub(crate) fn bare(title: &str, body: &str) -> Html {
        Html(format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>authtel console: {}</title></head><body><main>{body}</main></body></html>\n",
            escape(title)
        ))
    }
}

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut r = self.0.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        let hostile = "\"><script>alert(1)</script><a href='x'>&amp;";
        let e = escape(hostile);
        for c in ['<', '>', '"', '\''] {
            assert!(!e.contains(c), "{c} survived in {e}");
        }
        assert!(e.contains("&amp;amp;"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
