// Part of the operations both backends share, `include!`d through `common.rs`.

impl Relay<Db> {
    /// One pass: for each forwarder, claim up to a batch of due entries, deliver them, and
    /// record the result. Returns what it did.
    pub async fn run_once(&self) -> Result<RelayPass, SqlError> {
        let mut total = RelayPass::default();
        for (id, forwarder) in &self.forwarders {
            total.add(self.deliver_batch(id, forwarder.as_ref()).await?);
        }
        let stats = &self.stats;
        stats.delivered.fetch_add(total.delivered, AtomicOrdering::Relaxed);
        stats.retried.fetch_add(total.retried, AtomicOrdering::Relaxed);
        stats.dead.fetch_add(total.dead, AtomicOrdering::Relaxed);
        Ok(total)
    }

    async fn deliver_batch(
        &self,
        id: &str,
        forwarder: &dyn Forwarder,
    ) -> Result<RelayPass, SqlError> {
        let store = &self.store;
        let now = now_micros();
        let claimed = claim_batch(
            store,
            id,
            self.config.batch_size,
            now + micros(self.config.lease),
            now,
        )
        .await?;
        let mut pass = RelayPass {
            claimed: claimed.len() as u64,
            ..RelayPass::default()
        };
        let mut batch = Vec::with_capacity(claimed.len());
        let mut entries = Vec::with_capacity(claimed.len());
        let mut orphans = Vec::new();
        for c in claimed {
            match c.event {
                Some(event) => {
                    batch.push(event);
                    entries.push((c.entry, c.attempts));
                }
                None => orphans.push(c.entry),
            }
        }
        if !orphans.is_empty() {
            store
                .update_entries(&orphans, "dead", now, Some("the audit row is missing (purged?)"))
                .await?;
            pass.dead += orphans.len() as u64;
        }
        if batch.is_empty() {
            return Ok(pass);
        }
        let result = crate::relay::forward_catching(
            id,
            forwarder,
            &batch,
            self.config.forward_timeout,
            &self.stats,
        )
        .await;
        let done_at = now_micros();
        match result {
            Ok(()) => {
                let ids: Vec<i64> = entries.iter().map(|e| e.0).collect();
                store.update_entries(&ids, "done", done_at, None).await?;
                pass.delivered += ids.len() as u64;
            }
            Err(e) => {
                let reason = error_chain(&e);
                let max = i64::from(self.config.retry.max_attempts());
                let mut dead = Vec::new();
                let mut retry: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
                for (entry, attempts) in entries {
                    if !e.is_transient() || attempts >= max {
                        dead.push(entry);
                    } else {
                        retry.entry(attempts).or_default().push(entry);
                    }
                }
                let dead_reason = if e.is_transient() {
                    format!("gave up after {max} attempts: {reason}")
                } else {
                    reason.clone()
                };
                store
                    .update_entries(&dead, "dead", done_at, Some(&dead_reason))
                    .await?;
                pass.dead += dead.len() as u64;
                for (attempts, ids) in retry {
                    let delay = self.config.retry.delay_after(attempts.clamp(1, 64) as u32);
                    store
                        .update_entries(&ids, "pending", done_at + micros(delay), Some(&reason))
                        .await?;
                    pass.retried += ids.len() as u64;
                }
                tracing::warn!(
                    forwarder = id,
                    error = %reason,
                    retried = pass.retried,
                    dead = pass.dead,
                    "audit outbox delivery failed"
                );
            }
        }
        Ok(pass)
    }

    /// Runs the relay on the current tokio runtime until [`RelayHandle::shutdown`]. It
    /// passes again at once while there is work, waits for a commit on the same store or
    /// the poll interval when idle, and logs and counts database errors without stopping.
    pub fn spawn(self) -> RelayHandle {
        let stop = CommonArc::new(tokio::sync::Notify::new());
        let wake = self.store.inner.wake.clone();
        let stats = self.stats.clone();
        let task_stop = stop.clone();
        let task_wake = wake.clone();
        let task = tokio::spawn(async move {
            loop {
                // Forwarder panics are caught per call; this catches any other panic in a
                // pass, so the task never dies silently.
                let pass = crate::relay::CatchUnwind(Box::pin(self.run_once())).await;
                let busy = match pass {
                    Ok(Ok(pass)) => pass.claimed > 0,
                    Ok(Err(e)) => {
                        self.stats.errors.fetch_add(1, AtomicOrdering::Relaxed);
                        tracing::warn!(error = %error_chain(&e), "audit outbox relay pass failed");
                        false
                    }
                    Err(payload) => {
                        self.stats.panics.fetch_add(1, AtomicOrdering::Relaxed);
                        tracing::error!(
                            reason = crate::relay::panic_text(&*payload),
                            "audit outbox relay pass panicked; the relay keeps going"
                        );
                        false
                    }
                };
                if busy {
                    // Still yield a stop request promptly.
                    if tokio::time::timeout(std::time::Duration::ZERO, task_stop.notified())
                        .await
                        .is_ok()
                    {
                        break;
                    }
                    continue;
                }
                tokio::select! {
                    _ = task_stop.notified() => break,
                    _ = task_wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        });
        RelayHandle {
            task: Some(task),
            stop,
            wake,
            stats,
        }
    }
}
