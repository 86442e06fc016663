// Part of the operations both backends share, `include!`d through `common.rs`.

impl Relay<Db> {
    /// One pass: for each forwarder, claim up to a batch of due entries, deliver them, and
    /// record the result. Returns what it did.
    pub async fn run_once(&self) -> Result<RelayPass, SqlError> {
        let mut total = RelayPass::default();
        for deliverer in &self.forwarders {
            let (pass, failure) = self.deliver_batch(deliverer).await?;
            total.add(pass);
            self.report_status(deliverer, failure).await;
        }
        let stats = &self.stats;
        stats.delivered.fetch_add(total.delivered, AtomicOrdering::Relaxed);
        stats.retried.fetch_add(total.retried, AtomicOrdering::Relaxed);
        stats.dead.fetch_add(total.dead, AtomicOrdering::Relaxed);
        Ok(total)
    }

    /// Writes `deliverer`'s row of `audit_relay_status` when its breaker changed or the
    /// heartbeat is due. A failure is counted and logged, never returned: the status is for
    /// operators and must not stop delivery.
    async fn report_status(&self, deliverer: &authtel_pipeline::Deliverer, failure: Option<String>) {
        let now = Timestamp::now();
        let breaker = deliverer.metrics().breaker;
        let Some(row) = self.status.observe(deliverer.id(), breaker, failure, now) else {
            return;
        };
        match write_relay_status(&self.store, &self.status, &row, now.unix_micros()).await {
            Ok(()) => self.status.written(deliverer.id()),
            Err(e) => {
                self.stats.status_errors.fetch_add(1, AtomicOrdering::Relaxed);
                tracing::warn!(
                    forwarder = deliverer.id(),
                    error = %error_chain(&e),
                    "audit outbox relay could not write its status row; delivery goes on"
                );
            }
        }
    }

    /// Claims, delivers and marks one batch; returns what it did and the last failure's
    /// reason, if any.
    async fn deliver_batch(
        &self,
        deliverer: &authtel_pipeline::Deliverer,
    ) -> Result<(RelayPass, Option<String>), SqlError> {
        use authtel_pipeline::RecordOutcome;

        let id = deliverer.id();
        let store = &self.store;
        if deliverer.blocked() {
            // The breaker is open: claiming would spend an attempt on every entry for a
            // call that would not be made.
            return Ok((RelayPass::default(), None));
        }
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
            return Ok((pass, None));
        }
        let panics_before = deliverer.metrics().panics;
        let outcomes = deliverer.deliver(&batch).await;
        let panics = deliverer.metrics().panics - panics_before;
        self.stats.panics.fetch_add(panics, AtomicOrdering::Relaxed);

        let done_at = now_micros();
        let max = i64::from(self.config.retry.max_attempts);
        let mut done = Vec::new();
        // Entries of one pass that end alike are marked in one statement.
        let mut dead: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        let mut retry: std::collections::BTreeMap<(i64, String), Vec<i64>> = Default::default();
        let mut last_failure = None;
        for ((entry, attempts), outcome) in entries.into_iter().zip(outcomes) {
            match outcome {
                RecordOutcome::Delivered => done.push(entry),
                RecordOutcome::Refused { reason } => {
                    dead.entry(reason.clone()).or_default().push(entry);
                    last_failure = Some(reason);
                }
                RecordOutcome::RetryLater { reason, not_before } => {
                    if attempts >= max {
                        let why = format!("gave up after {max} attempts: {reason}");
                        dead.entry(why).or_default().push(entry);
                    } else {
                        let backoff = self.config.retry.delay_after(attempts.clamp(1, 64) as u32);
                        let breaker = not_before
                            .map(|t| t.saturating_duration_since(std::time::Instant::now()))
                            .unwrap_or_default();
                        let at = done_at + micros(backoff.max(breaker));
                        retry.entry((at, reason.clone())).or_default().push(entry);
                    }
                    last_failure = Some(reason);
                }
            }
        }
        store.update_entries(&done, "done", done_at, None).await?;
        pass.delivered += done.len() as u64;
        for (reason, ids) in &dead {
            store
                .update_entries(ids, "dead", done_at, Some(reason))
                .await?;
            pass.dead += ids.len() as u64;
        }
        for ((at, reason), ids) in &retry {
            store
                .update_entries(ids, "pending", *at, Some(reason))
                .await?;
            pass.retried += ids.len() as u64;
        }
        if let Some(reason) = &last_failure {
            tracing::warn!(
                forwarder = id,
                error = %reason,
                delivered = pass.delivered,
                retried = pass.retried,
                dead = pass.dead,
                breaker = ?deliverer.metrics().breaker,
                "audit outbox delivery failed"
            );
        }
        Ok((pass, last_failure))
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
            // A clean stop: this relay reports nothing any more, so readers see "no relay"
            // rather than a row going stale.
            if let Err(e) = forget_relay_status(&self.store, &self.status.relay).await {
                tracing::warn!(error = %error_chain(&e), "audit outbox relay could not delete its status rows");
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
