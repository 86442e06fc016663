//! Every encoding a needle could leak in, and a single-pass search of every output.

use aho_corasick::AhoCorasick;

pub const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 of `bytes` with `alphabet`, with `=` padding when `pad`.
pub fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 text that appears inside any encoding of a text containing `needle`,
/// whatever the needle's alignment: for each of the three alignments, the characters
/// that depend on the needle's bytes only.
pub fn base64_inner(needle: &[u8], alphabet: &[u8; 64]) -> Vec<String> {
    (0..3)
        .filter_map(|skip| {
            let rest = &needle[skip.min(needle.len())..];
            let whole = rest.len() / 3 * 3;
            let enc = base64(&rest[..whole], alphabet, false);
            (enc.len() >= 8).then_some(enc)
        })
        .collect()
}

fn percent(needle: &str) -> String {
    let mut out = String::new();
    for b in needle.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The needle and each of its encodings: base64 (standard and url-safe, every
/// alignment), hex (lower and upper), percent-encoded and JSON-escaped. Forms equal to
/// the needle itself are listed once.
pub fn encodings(needle: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![("plain", needle.to_owned())];
    for e in base64_inner(needle.as_bytes(), STANDARD) {
        out.push(("base64", e));
    }
    for e in base64_inner(needle.as_bytes(), URL_SAFE) {
        out.push(("base64url", e));
    }
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    out.push(("hex", hex.clone()));
    out.push(("HEX", hex.to_uppercase()));
    out.push(("percent", percent(needle)));
    let json = serde_json::to_string(needle).unwrap();
    out.push(("json", json[1..json.len() - 1].to_owned()));
    let mut seen = std::collections::HashSet::new();
    out.retain(|(_, e)| seen.insert(e.clone()));
    out
}

/// One needle occurrence in one output.
#[derive(Clone, Debug)]
pub struct Hit {
    pub plant: usize,
    pub encoding: &'static str,
    pub sink: String,
    pub context: String,
}

/// All needles of all plants, searched in one pass per output.
pub struct Search {
    automaton: AhoCorasick,
    /// For each pattern: the plant it belongs to, its encoding, and whether it must stand
    /// between non-digits (codes made of digits, which random digits in numbers and
    /// timestamps could otherwise match).
    owners: Vec<(usize, &'static str, bool)>,
}

impl Search {
    /// `needles[i]` are the needles of plant `i`.
    pub fn new(needles: &[Vec<String>]) -> Search {
        let mut patterns = Vec::new();
        let mut owners = Vec::new();
        for (plant, list) in needles.iter().enumerate() {
            for needle in list {
                let digits = needle.bytes().all(|b| b.is_ascii_digit() || b == b'-');
                for (encoding, e) in encodings(needle) {
                    owners.push((plant, encoding, digits && encoding != "hex"));
                    patterns.push(e);
                }
            }
        }
        Search {
            automaton: AhoCorasick::new(&patterns).expect("patterns build"),
            owners,
        }
    }

    /// How many encoded needles are searched.
    pub fn patterns(&self) -> usize {
        self.owners.len()
    }

    /// Every occurrence of any needle in `output`.
    pub fn hits(&self, sink: &str, output: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        for m in self.automaton.find_overlapping_iter(output) {
            let (plant, encoding, bounded) = self.owners[m.pattern().as_usize()];
            let digit = |i: Option<&u8>| i.is_some_and(u8::is_ascii_digit);
            if bounded
                && (digit(m.start().checked_sub(1).and_then(|i| output.get(i)))
                    || digit(output.get(m.end()))
                    || inside_hex_id(output, m.start(), m.end()))
            {
                continue;
            }
            let from = m.start().saturating_sub(60);
            let to = (m.end() + 60).min(output.len());
            hits.push(Hit {
                plant,
                encoding,
                sink: sink.to_owned(),
                context: String::from_utf8_lossy(&output[from..to]).into_owned(),
            });
        }
        hits
    }
}

/// Whether `output[start..end]` (a code made of digits) lies inside a random id written in
/// lowercase hex (a span or trace id, a UUID's group): a run of `[0-9a-f]` at least 12 long
/// that goes on past the code with a hex letter right beside it. Random ids hold any digit
/// sequence now and then (span id `fee1b6cd40218189` holds the code `40218189`), which is
/// not a leak; a code standing in text (`session=40218189;`, `%3D40218189%3B`) still counts.
pub fn inside_hex_id(output: &[u8], start: usize, end: usize) -> bool {
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    let letter = |i: usize| output.get(i).is_some_and(|b| (b'a'..=b'f').contains(b));
    let beside = start.checked_sub(1).is_some_and(letter) || letter(end);
    if !beside {
        return false;
    }
    let from = output[..start].iter().rev().take_while(|b| hex(b)).count();
    let to = output[end..].iter().take_while(|b| hex(b)).count();
    from + (end - start) + to >= 12
}
