//! A million distinct addresses and a million distinct accounts failing logins — and a
//! quarter of them also logging in, failing a code and logging out, more than those tables
//! hold, so every table fills — stay under the default 64 MiB bound by the detectors' own
//! accounting, and that accounting matches what the heap allocator actually handed out
//! (this test binary counts every allocation).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicIsize, Ordering};

use authtel_core::catalogue::{AUTH_LOGIN, MFA_VERIFY, SESSION_DELETE};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
use authtel_detect::clock::ManualClock;
use authtel_detect::{
    DEFAULT_MEMORY_BYTES, DetectConfig, DetectorHandler, Detectors, FixedGeo, GeoPoint,
};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is only
// bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const N: u32 = 1_000_000;

fn feed(handlers: &[DetectorHandler], clock: &ManualClock, i: u32, user: &str, ip: IpAddr) {
    let numbers = Measurements::new();
    let ctx = SpanContext::child_of(None);
    let ua = format!("ua/bot/{i}");
    let session = format!("s{i}");
    let failed = Metadata::new()
        .user_id(user)
        .client_ip(ip)
        .outcome(Outcome::Failure);
    let ok = Metadata::new()
        .user_id(user)
        .client_ip(ip)
        .user_agent(&ua)
        .outcome(Outcome::Success);
    let code = Metadata::new()
        .user_id(user)
        .method("totp")
        .outcome(Outcome::Failure);
    let logout = Metadata::new()
        .user_id(user)
        .session_id(&session)
        .outcome(Outcome::Success);
    let records = [
        EventRecord::signal(AUTH_LOGIN.stop(), ctx, &numbers, &failed),
        EventRecord::signal(AUTH_LOGIN.stop(), ctx, &numbers, &ok),
        EventRecord::signal(MFA_VERIFY.stop(), ctx, &numbers, &code),
        EventRecord::signal(SESSION_DELETE.stop(), ctx, &numbers, &logout),
    ];
    clock.set_ms(u64::from(i) * 7);
    // Every account and address fails a login; one in four goes on (the tables of the
    // other detectors hold fewer than 250,000 keys, so they overflow too).
    let records = if i.is_multiple_of(4) {
        &records[..]
    } else {
        &records[..1]
    };
    for record in records {
        for h in handlers {
            if h.events.iter().any(|e| std::ptr::eq(*e, record.event)) {
                h.handler.handle(record);
            }
        }
    }
}

#[test]
fn a_million_addresses_and_accounts_stay_under_the_bound() {
    let before = LIVE.load(Ordering::Relaxed);
    let clock = ManualClock::new();
    // Every address is located, so the travel table fills too.
    let geo = FixedGeo::new()
        .with_network("0.0.0.0/0", GeoPoint::new(52.5, 13.4, 25).with_asn(64_500))
        .unwrap()
        .with_network("::/0", GeoPoint::new(-33.9, 151.2, 25).with_asn(64_501))
        .unwrap();
    let detectors = Detectors::builder()
        .with_config(DetectConfig::default())
        .with_clock(clock.clone())
        .with_geo(geo)
        .build()
        .unwrap();
    let handlers = detectors.handlers();
    for i in 0..N {
        // Half the addresses IPv4, half IPv6, all distinct and in distinct networks (an odd
        // multiplier is a bijection on u32); every account distinct.
        let ip = if i % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(0x9E37_79B1)))
        } else {
            IpAddr::V6(Ipv6Addr::from(0x2001_u128 << 112 | u128::from(i) << 80 | 1))
        };
        feed(&handlers, &clock, i, &format!("u{i}"), ip);
    }
    drop(handlers);
    let stats = detectors.stats();
    let heap = (LIVE.load(Ordering::Relaxed) - before) as usize;
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "after {N} addresses and {N} accounts: accounted {:.1} MiB, heap {:.1} MiB, bound {:.0} MiB",
        mib(stats.memory_bytes),
        mib(heap),
        mib(stats.bound_bytes)
    );
    for t in &stats.tables {
        println!(
            "  {:<30} {:>8} entries of {:>8}, {:>6.2} MiB of {:>6.2} MiB, {} evicted",
            t.name,
            t.entries,
            t.capacity,
            mib(t.bytes),
            mib(t.budget_bytes),
            t.evictions
        );
        assert!(t.bytes <= t.budget_bytes, "{t:?}");
    }
    assert_eq!(stats.bound_bytes, DEFAULT_MEMORY_BYTES);
    assert!(stats.memory_bytes <= stats.bound_bytes, "{stats:?}");
    assert!(stats.budget_bytes <= stats.bound_bytes, "{stats:?}");
    // Every table filled up and evicted: the flood was big enough to test the bound. (The
    // penalty box fills only under attack; it is bounded the same way.)
    assert!(
        stats
            .tables
            .iter()
            .filter(|t| t.name != "penalties")
            .all(|t| t.evictions > 0 && t.entries == t.capacity),
        "{stats:?}"
    );
    // The accounting is the truth: the heap grew by what the detectors say they hold
    // (give or take the detector set's own small structures).
    assert!(
        heap <= stats.memory_bytes + (64 << 10),
        "heap {heap} > accounted {}",
        stats.memory_bytes
    );
    assert!(
        heap + (64 << 10) >= stats.memory_bytes,
        "heap {heap} < accounted {}",
        stats.memory_bytes
    );
    drop(detectors);
    let after = (LIVE.load(Ordering::Relaxed) - before) as usize;
    assert!(after < 64 << 10, "{after} bytes still held after drop");
}
