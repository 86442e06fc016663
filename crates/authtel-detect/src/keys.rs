//! What the detectors count on: keyed digests of identifiers, addresses and networks.
//!
//! Every key is attacker input (a typed user name resolves to an account id, an address is
//! whatever connects), so state is never indexed by a predictable hash. Each [`Detectors`]
//! draws a fresh SipHash-1-3 key from std's [`RandomState`] and stores only the 64-bit
//! keyed digest of each key, never the identifier or address itself:
//!
//! - **Hash flooding**: without the key, nobody can choose inputs that land in one bucket;
//!   the tables index by the digest's bits directly.
//! - **Collisions**: two distinct keys share state with probability about n²/2⁶⁵ for n keys
//!   held (10⁻⁸ at a million), and an attacker cannot aim for one.
//! - **Privacy**: a heap dump of the detector holds no user id and no address.
//!
//! A login event is seen by several detectors; the handler that runs them computes the
//! digests of the record once, on the stack, and hands them to each ([`RecordKeys`]).
//!
//! [`Detectors`]: crate::Detectors

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use authtel_core::telemetry::EventRecord;

/// Domain tags, so an address and an identifier with the same bytes never share a digest.
const TAG_USER: u64 = 1;
const TAG_IP: u64 = 2;
const TAG_PREFIX: u64 = 3;
const TAG_DEVICE: u64 = 4;
const TAG_SESSION: u64 = 5;
const TAG_NETWORK: u64 = 6;

/// The keyed hasher of one detector set: SipHash-1-3 (the function and round counts std's
/// `HashMap` uses) under one random 128-bit key.
///
/// For each key kind the hasher keeps a state that has already absorbed the kind's tag as
/// one whole 8-byte block; a digest copies those four words and absorbs the key's bytes (the
/// account's UTF-8, the address's 4 or 16 bytes), so domain separation costs nothing per
/// key. The rounds are written out here rather than driven through std's streaming
/// [`Hasher`](std::hash::Hasher) because the keys are short and their lengths known: a
/// 4-byte address is one compression and the finalisation, with no tail buffering, no
/// 72-byte state to copy, and no call. The key comes from std's [`RandomState`] (two of its
/// keyed outputs), so it is as unpredictable as `HashMap`'s. The test
/// `matches_reference_siphash13` checks the output against the reference vectors. Its `Debug`
/// shows no state (the states are the key in all but name).
#[derive(Clone)]
pub(crate) struct KeyHasher {
    user: SipState,
    ip: SipState,
    prefix: SipState,
    device: SipState,
    session: SipState,
    network: SipState,
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHasher").finish_non_exhaustive()
    }
}

/// SipHash's four words of state, after the key and any whole blocks absorbed so far.
#[derive(Clone, Copy)]
struct SipState([u64; 4]);

impl SipState {
    /// The state SipHash starts from with key (`k0`, `k1`).
    fn keyed(k0: u64, k1: u64) -> SipState {
        SipState([
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ])
    }

    #[inline(always)]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.0;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    /// Absorbs one 8-byte block (one compression round: the "1" of SipHash-1-3).
    #[inline(always)]
    fn block(&mut self, m: u64) {
        self.0[3] ^= m;
        self.round();
        self.0[0] ^= m;
    }

    /// The digest of the message absorbed so far (`before` bytes, all in whole blocks)
    /// followed by `bytes`: their whole blocks, the last block (the rest of the bytes and
    /// the message's length), and the three finalisation rounds.
    #[inline(always)]
    fn finish(mut self, before: usize, bytes: &[u8]) -> u64 {
        let mut blocks = bytes.chunks_exact(8);
        for b in &mut blocks {
            self.block(u64::from_le_bytes(b.try_into().expect("8 bytes")));
        }
        let mut last = ((before + bytes.len()) as u64) << 56;
        for (i, &b) in blocks.remainder().iter().enumerate() {
            last |= u64::from(b) << (8 * i);
        }
        self.block(last);
        self.0[2] ^= 0xff;
        self.round();
        self.round();
        self.round();
        let [v0, v1, v2, v3] = self.0;
        v0 ^ v1 ^ v2 ^ v3
    }
}

/// The digest of `bytes` from a state that absorbed an 8-byte tag.
#[inline(always)]
fn digest(tagged: &SipState, bytes: &[u8]) -> u64 {
    tagged.finish(8, bytes)
}

impl KeyHasher {
    pub(crate) fn new() -> KeyHasher {
        // Two outputs of a freshly keyed SipHash: 128 bits nobody outside can predict.
        let random = RandomState::new();
        KeyHasher::with_key(random.hash_one(0u64), random.hash_one(1u64))
    }

    fn with_key(k0: u64, k1: u64) -> KeyHasher {
        let tagged = |tag: u64| {
            let mut s = SipState::keyed(k0, k1);
            s.block(tag);
            s
        };
        KeyHasher {
            user: tagged(TAG_USER),
            ip: tagged(TAG_IP),
            prefix: tagged(TAG_PREFIX),
            device: tagged(TAG_DEVICE),
            session: tagged(TAG_SESSION),
            network: tagged(TAG_NETWORK),
        }
    }

    pub(crate) fn user(&self, user: &str) -> u64 {
        digest(&self.user, user.as_bytes())
    }

    /// IPv4 (and IPv4-mapped IPv6) as its 4 bytes, IPv6 as its 16: SipHash mixes the length
    /// in, so the two families never share a digest.
    pub(crate) fn ip(&self, ip: IpAddr) -> u64 {
        match ip.to_canonical() {
            IpAddr::V4(v4) => digest(&self.ip, &v4.octets()),
            IpAddr::V6(v6) => digest(&self.ip, &v6.octets()),
        }
    }

    pub(crate) fn prefix(&self, ip: IpAddr) -> u64 {
        match ip.to_canonical() {
            IpAddr::V4(v4) => digest(&self.prefix, &(u32::from(v4) & 0xFFFF_FF00).to_le_bytes()),
            IpAddr::V6(v6) => digest(
                &self.prefix,
                &(u128::from(v6) & !((1u128 << 80) - 1)).to_le_bytes(),
            ),
        }
    }

    pub(crate) fn device(&self, user_agent: &str) -> u64 {
        digest(&self.device, user_agent.as_bytes())
    }

    pub(crate) fn session(&self, session: &str) -> u64 {
        digest(&self.session, session.as_bytes())
    }

    pub(crate) fn network(&self, asn: u32) -> u64 {
        digest(&self.network, &asn.to_le_bytes())
    }

    /// The digest of the pair (address, identifier), from the two digests. Both inputs are
    /// keyed and secret, so a fixed bijective mix keeps the pair unpredictable without a
    /// third SipHash.
    pub(crate) fn pair(ip: u64, user: u64) -> u64 {
        mix(ip.rotate_left(23) ^ mix(user ^ 0x9E37_79B9_7F4A_7C15))
    }
}

/// The 32-bit piece of a digest a detector keeps in a small fixed set (spraying's accounts,
/// an account's pair addresses, a history of networks): the digest's high half, never zero,
/// so an empty slot (0) is never mistaken for a key.
pub(crate) fn piece(fp: u64) -> u32 {
    (fp >> 32) as u32 | 1
}

/// A bijective 64-bit finaliser (the one from SplitMix64).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Mixes a key kind into a digest, for tables shared by several kinds (the penalty box).
pub(crate) fn tagged(fp: u64, tag: u8) -> u64 {
    mix(fp ^ (u64::from(tag) << 56 | 0x00A5_A5A5))
}

/// The network of an address as text, `203.0.113.0/24` or `2001:db8:1::/48`.
pub(crate) fn prefix_text(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let net = std::net::Ipv4Addr::from(u32::from(v4) & 0xFFFF_FF00);
            format!("net:{net}/24")
        }
        IpAddr::V6(v6) => {
            let net = std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 80) - 1));
            format!("net:{net}/48")
        }
    }
}

/// The digests of one record, each computed on first use, and the time it was first seen.
///
/// Built once per record on the stack by whoever handles it: the login handler
/// [`Detectors::attach`](crate::Detectors::attach) attaches builds one for all the login
/// detectors it runs, so a failed login hashes its account, address and network once and
/// reads the clock once; a detector attached alone builds its own.
#[derive(Debug)]
pub(crate) struct RecordKeys<'h, 'r> {
    hasher: &'h KeyHasher,
    record: &'r EventRecord<'r>,
    now: u64,
    user: Option<Option<u64>>,
    ip: Option<Option<u64>>,
    pair: Option<Option<u64>>,
    prefix: Option<Option<u64>>,
    device: Option<Option<u64>>,
}

impl<'h, 'r> RecordKeys<'h, 'r> {
    /// The keys of `record`, seen at `now` (ms on the detectors' clock); built by
    /// [`Shared::keys`](crate::detectors::Shared::keys), which reads the clock.
    #[inline]
    pub(crate) fn new(
        hasher: &'h KeyHasher,
        now: u64,
        record: &'r EventRecord<'r>,
    ) -> RecordKeys<'h, 'r> {
        RecordKeys {
            hasher,
            record,
            now,
            user: None,
            ip: None,
            pair: None,
            prefix: None,
            device: None,
        }
    }

    /// The clock when the record was first seen.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    pub(crate) fn user(&mut self) -> Option<u64> {
        let (hasher, meta) = (self.hasher, self.record.metadata);
        *self
            .user
            .get_or_insert_with(|| meta.get_user_id().map(|u| hasher.user(u)))
    }

    pub(crate) fn ip(&mut self) -> Option<u64> {
        let (hasher, meta) = (self.hasher, self.record.metadata);
        *self
            .ip
            .get_or_insert_with(|| meta.get_client_ip().map(|ip| hasher.ip(ip)))
    }

    pub(crate) fn pair(&mut self) -> Option<u64> {
        if let Some(pair) = self.pair {
            return pair;
        }
        let pair = self
            .ip()
            .and_then(|ip| Some(KeyHasher::pair(ip, self.user()?)));
        self.pair = Some(pair);
        pair
    }

    pub(crate) fn prefix(&mut self) -> Option<u64> {
        let (hasher, meta) = (self.hasher, self.record.metadata);
        *self
            .prefix
            .get_or_insert_with(|| meta.get_client_ip().map(|ip| hasher.prefix(ip)))
    }

    pub(crate) fn device(&mut self) -> Option<u64> {
        let (hasher, meta) = (self.hasher, self.record.metadata);
        *self.device.get_or_insert_with(|| {
            meta.get_user_agent()
                .filter(|ua| !ua.is_empty())
                .map(|ua| hasher.device(ua))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_plain_ipv4_are_one_key() {
        let h = KeyHasher::new();
        let plain: IpAddr = "203.0.113.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(h.ip(plain), h.ip(mapped));
        assert_eq!(h.prefix(plain), h.prefix("203.0.113.200".parse().unwrap()));
        assert_ne!(h.prefix(plain), h.prefix("203.0.114.7".parse().unwrap()));
        let v6: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        assert_eq!(
            h.prefix(v6),
            h.prefix("2001:db8:1:ffff::9".parse().unwrap())
        );
        assert_ne!(h.prefix(v6), h.prefix("2001:db8:2::1".parse().unwrap()));
    }

    #[test]
    fn digests_are_keyed_per_hasher_and_domain_separated() {
        let (a, b) = (KeyHasher::new(), KeyHasher::new());
        assert_ne!(a.user("u_1"), b.user("u_1"));
        assert_ne!(a.user("u_1"), a.device("u_1"));
        assert_eq!(a.user("u_1"), a.user("u_1"));
    }

    #[test]
    fn matches_reference_siphash13() {
        // Every message length from empty to three blocks past the tag, against the
        // `siphasher` crate's SipHash-1-3 of the same key over tag ‖ bytes.
        use std::hash::Hasher;
        let (k0, k1) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let h = KeyHasher::with_key(k0, k1);
        let bytes: Vec<u8> = (0u8..40).collect();
        for len in 0..=bytes.len() {
            let mut reference = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
            reference.write(&TAG_USER.to_le_bytes());
            reference.write(&bytes[..len]);
            assert_eq!(
                digest(&h.user, &bytes[..len]),
                reference.finish(),
                "length {len}"
            );
        }
        let mut reference = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
        reference.write(&TAG_IP.to_le_bytes());
        reference.write(&[203, 0, 113, 7]);
        assert_eq!(h.ip("203.0.113.7".parse().unwrap()), reference.finish());
    }

    #[test]
    fn debug_shows_no_key() {
        let h = KeyHasher::new();
        let text = format!("{h:?}");
        // A derived `Debug` would print each SipHash state, keys (`k0`, `k1`) included.
        assert!(!text.contains("k0") && !text.contains("k1"), "{text}");
        assert!(text.starts_with("KeyHasher"), "{text}");
    }

    #[test]
    fn prefix_text_names_the_network() {
        assert_eq!(
            prefix_text("203.0.113.7".parse().unwrap()),
            "net:203.0.113.0/24"
        );
        assert_eq!(
            prefix_text("2001:db8:1:2::1".parse().unwrap()),
            "net:2001:db8:1::/48"
        );
    }
}
