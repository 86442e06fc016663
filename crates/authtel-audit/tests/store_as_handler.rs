//! The store attached as a handler: what it keeps, enable/disable while events flow, named
//! instances, the access policy, and that no planted secret comes back out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use authtel_audit::{
    AccessDenied, Reader, RecentAuditStore, RequireRole, StoreRegistry, policy_fn,
};
use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::authorization::{DenyReason, Operation, log_authorized, log_denied, log_error};
use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Registry, Selection, handler_fn};
use authtel_core::telemetry::{self, Measurements};

fn admin() -> Reader {
    Reader::new("test").with_role("admin")
}

fn attached(store: &RecentAuditStore) -> Registry {
    let registry = Registry::new();
    registry
        .attach("recent", Selection::All, store.clone())
        .unwrap();
    registry
}

#[test]
fn attached_store_keeps_audited_events_but_not_span_starts() {
    let store = RecentAuditStore::new("s").unwrap();
    let registry = attached(&store);
    let _scope = registry.enter();
    let r: Result<(), &str> = telemetry::span(
        &catalogue::AUTH_LOGIN,
        Metadata::new().user_id("u_1"),
        || Err("bad password"),
    );
    assert!(r.is_err());
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Measurements::new(),
        Metadata::new().user_id("u_1").reason("too_many_attempts"),
    );
    let actions: Vec<String> = store
        .recent(&admin(), 10)
        .unwrap()
        .iter()
        .map(|e| e.action().to_owned())
        .collect();
    assert_eq!(actions, ["security.lockout", "auth.login.stop"]);
    let login = &store.by_action(&admin(), "auth.login.stop", 1).unwrap()[0];
    assert_eq!(login.outcome(), Outcome::Failure);
    assert_eq!(login.actor().unwrap().id, "u_1");
}

#[test]
fn authorization_decisions_are_queryable_by_caller_resource_and_outcome() {
    let store = RecentAuditStore::new("authz").unwrap();
    let registry = attached(&store);
    let _scope = registry.enter();
    log_authorized(Operation::Call, "did:key:a", "home.status");
    log_denied(
        Operation::Publish,
        "did:key:a",
        "grid.prices",
        DenyReason::NamespaceMismatch,
    );
    log_error(
        Operation::Subscribe,
        "did:key:b",
        "grid.prices",
        &"policy store unreachable",
    );
    let by_caller = store.by_actor(&admin(), "did:key:a", 10).unwrap();
    assert_eq!(by_caller.len(), 2);
    assert_eq!(by_caller[0].outcome(), Outcome::Denied);
    assert_eq!(by_caller[0].reason(), Some("namespace_mismatch"));
    assert_eq!(by_caller[0].operation(), Some("publish"));
    assert_eq!(by_caller[1].outcome(), Outcome::Success);
    let on_prices = store.by_resource(&admin(), "grid.prices", 10).unwrap();
    assert_eq!(on_prices.len(), 2);
    assert_eq!(on_prices[0].actor().unwrap().id, "did:key:b");
    let errors = store.by_outcome(&admin(), Outcome::Error, 10).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason(), Some("authorizer_error"));
    assert_eq!(errors[0].metadata()["error"], "policy store unreachable");
    let stats = store.stats();
    assert_eq!(stats.by_outcome[&Outcome::Success], 1);
    assert_eq!(stats.by_outcome[&Outcome::Denied], 1);
    assert_eq!(stats.by_outcome[&Outcome::Error], 1);
    assert_eq!(stats.by_operation["publish"], 1);
    assert_eq!(stats.by_action["authorization.denied"], 1);
    assert!(stats.oldest.is_some());
}

#[test]
fn disabled_store_counts_instead_of_storing_while_events_keep_flowing() {
    let store = RecentAuditStore::new("s").unwrap();
    let registry = attached(&store);
    let others = Arc::new(AtomicUsize::new(0));
    let seen = others.clone();
    registry
        .attach(
            "other",
            Selection::All,
            handler_fn(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
    let _scope = registry.enter();
    log_authorized(Operation::Call, "c1", "r1");
    store.disable();
    assert!(!store.is_enabled());
    log_authorized(Operation::Call, "c2", "r1");
    log_authorized(Operation::Call, "c3", "r1");
    store.enable();
    log_authorized(Operation::Call, "c4", "r1");
    assert_eq!(
        others.load(Ordering::Relaxed),
        4,
        "other handlers see every event"
    );
    let callers: Vec<String> = store
        .recent(&admin(), 10)
        .unwrap()
        .iter()
        .map(|e| e.actor().unwrap().id.clone())
        .collect();
    assert_eq!(callers, ["c4", "c1"]);
    assert_eq!(store.stats().dropped_disabled, 2);
}

#[test]
fn reading_without_the_admin_role_is_a_typed_refusal() {
    let store = RecentAuditStore::new("s").unwrap();
    store
        .insert(AuditEvent::new("security.lockout", Outcome::Failure).unwrap())
        .unwrap();
    let guest = Reader::new("guest").with_role("viewer");
    let err: AccessDenied = store.recent(&guest, 10).unwrap_err();
    assert_eq!(err.reader(), "guest");
    assert!(err.to_string().contains("\"admin\" role"), "{err}");
    assert!(store.by_actor(&guest, "u", 1).is_err());
    assert!(store.by_resource(&guest, "r", 1).is_err());
    assert!(store.by_action(&guest, "security.lockout", 1).is_err());
    assert!(store.by_outcome(&guest, Outcome::Failure, 1).is_err());
    let all_time = (Timestamp::from_unix_micros(0), Timestamp::now());
    assert!(store.between(&guest, all_time.0, all_time.1, 1).is_err());
    assert_eq!(
        store
            .between(&admin(), all_time.0, all_time.1, 5)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_custom_policy_decides_who_reads() {
    let auditors = RecentAuditStore::builder("a")
        .with_access_policy(RequireRole::new("auditor"))
        .build()
        .unwrap();
    assert!(auditors.recent(&admin(), 1).is_err());
    assert!(
        auditors
            .recent(&Reader::new("x").with_role("auditor"), 1)
            .is_ok()
    );
    let named = RecentAuditStore::builder("b")
        .with_access_policy(policy_fn(|r: &Reader| {
            if r.id() == "ops" {
                Ok(())
            } else {
                Err(AccessDenied::new(r.id(), "only the ops console reads"))
            }
        }))
        .build()
        .unwrap();
    assert!(named.recent(&Reader::new("ops"), 1).is_ok());
    let err = named.recent(&admin(), 1).unwrap_err();
    assert_eq!(err.reason(), "only the ops console reads");
}

#[test]
fn named_instances_are_independent() {
    let stores = StoreRegistry::new();
    let authz = stores.get_or_create("authz").unwrap();
    let admin_actions = stores.get_or_create("admin-actions").unwrap();
    assert!(stores.get_or_create("authz").unwrap().same_store(&authz));
    assert!(!authz.same_store(&admin_actions));
    authz.set_max_entries(5).unwrap();
    admin_actions.disable();
    authz
        .insert(AuditEvent::new("authorization.allowed", Outcome::Success).unwrap())
        .unwrap();
    admin_actions
        .insert(AuditEvent::new("security.lockout", Outcome::Failure).unwrap())
        .unwrap();
    assert_eq!(authz.stats().entries, 1);
    assert_eq!(admin_actions.stats().entries, 0);
    assert_eq!(admin_actions.settings().max_entries, 10_000);
    assert!(authz.is_enabled());
    assert!(
        stores
            .register(RecentAuditStore::new("authz").unwrap())
            .is_err()
    );
    assert!(stores.remove("authz").unwrap().same_store(&authz));
    assert_eq!(stores.names(), ["admin-actions"]);
    assert!(stores.get("authz").is_none());
}

#[test]
fn planted_secrets_never_come_back_out_of_the_store() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlLXZhbHVl";
    let secrets = [
        "hunter2-pass",
        "tok_live_123",
        "refresh-abc-999",
        "otp-481516",
        "sid-cookie-value",
        "oauth-client-secret-x",
        "$argon2id$v=19$m=65536",
        jwt,
    ];
    let store = RecentAuditStore::new("s").unwrap();
    let registry = attached(&store);
    {
        let _scope = registry.enter();
        telemetry::event(
            &catalogue::SECURITY_INVALID_CREDENTIALS,
            Measurements::new(),
            Metadata::new()
                .user_id("u_1")
                .reason(jwt)
                .user_agent(&format!("Bearer {}", secrets[1]))
                .with_extra("password", secrets[0])
                .with_extra("refresh_token", secrets[2])
                .with_extra("totp", secrets[3])
                .with_extra("cookie", secrets[4])
                .with_extra("client_secret", secrets[5])
                .with_extra("password_hash", secrets[6]),
        );
        log_error(
            Operation::Call,
            "svc",
            "r",
            &format!("rejected Bearer {jwt}"),
        );
    }
    // A directly inserted record with secrets nested deep in its metadata.
    let mut direct = AuditEvent::for_action("billing.card.added", Outcome::Success).unwrap();
    direct = direct.with_session_id(jwt.to_owned());
    direct = direct.with_metadata("request", serde_json::json!({
            "headers": {"Authorization": format!("Bearer {}", secrets[1]), "Set-Cookie": secrets[4]},
            "body": {"form": {"new_password": secrets[0]}, "tokens": {"access_token": secrets[2]}},
            "note": jwt,
        })).unwrap();
    store.insert(direct).unwrap();

    let mut output = String::new();
    for event in store.recent(&admin(), 100).unwrap() {
        output.push_str(&serde_json::to_string(&*event).unwrap());
        output.push_str(&format!("{event:?}"));
    }
    output.push_str(&format!("{:?}", store.stats()));
    assert_eq!(store.stats().entries, 3);
    for secret in secrets {
        assert!(!output.contains(secret), "{secret:?} leaked into {output}");
    }
    assert!(output.contains("[REDACTED]"));
}
