// Part of the operations both backends share, `include!`d through `common.rs`.

impl AuditStore<Db> {
    /// One page of records matching `q`, oldest first, and the cursor of the next page.
    pub async fn query(&self, q: &AuditQuery) -> Result<Page, SqlError> {
        let mut qb = sqlx::QueryBuilder::<Db>::new(self.inner.sql.select_events.clone());
        qb.push(" WHERE 1 = 1");
        if let Some(tenant) = &q.tenant_id {
            qb.push(" AND tenant_id = ").push_bind(tenant.clone());
        }
        if let Some(actor) = &q.actor_id {
            qb.push(" AND actor_id = ").push_bind(actor.clone());
        }
        if let Some(ip) = q.client_ip {
            qb.push(" AND client_ip = ").push_bind(ip.to_string());
        }
        if let Some(action) = &q.action {
            qb.push(" AND action = ").push_bind(action.clone());
        }
        if let Some(outcome) = q.outcome {
            qb.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(from) = q.from {
            qb.push(" AND occurred_at >= ");
            push_ts(&mut qb, from.unix_micros());
        }
        if let Some(until) = q.until {
            qb.push(" AND occurred_at < ");
            push_ts(&mut qb, until.unix_micros());
        }
        if let Some(after) = q.after {
            qb.push(" AND (occurred_at, event_id) > (");
            push_ts(&mut qb, after.occurred_at);
            qb.push(", ");
            push_id(&mut qb, after.event_id.hyphenated().to_string());
            qb.push(")");
        }
        let limit = q.page_size();
        qb.push(" ORDER BY occurred_at, event_id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query audit events"))?;
        let events = rows
            .iter()
            .map(|r| {
                stored_row(r)
                    .map_err(SqlError::db("read an audit row"))?
                    .into_event()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = (events.len() == limit as usize)
            .then(|| events.last().map(Cursor::after_event))
            .flatten();
        Ok(Page { events, next })
    }

    /// Every record matching `q` (its cursor and limit are the starting point and page
    /// size), one JSON object per line, paging through the table so memory stays bounded.
    /// Returns the number of records written.
    pub async fn export_ndjson<W: std::io::Write>(
        &self,
        q: &AuditQuery,
        mut out: W,
    ) -> Result<u64, SqlError> {
        let mut q = q.clone();
        if q.limit.is_none() {
            q.limit = Some(1000);
        }
        let mut written = 0u64;
        loop {
            let page = self.query(&q).await?;
            for e in &page.events {
                let io = |cause| SqlError::Export { written, cause };
                serde_json::to_writer(&mut out, e).map_err(|e| io(e.into()))?;
                out.write_all(b"\n").map_err(io)?;
                written += 1;
            }
            match page.next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        out.flush()
            .map_err(|cause| SqlError::Export { written, cause })?;
        Ok(written)
    }

    /// Client IPs with at least `min_failures` failed logins
    /// ([`FAILED_LOGIN_ACTIONS`](crate::detect::FAILED_LOGIN_ACTIONS)) since `since`, most
    /// failures first.
    pub async fn failed_login_bursts(
        &self,
        since: Timestamp,
        min_failures: u64,
    ) -> Result<Vec<FailedLoginBurst>, SqlError> {
        let rows = sqlx::query(self.inner.sql.failed_login_bursts.clone())
            .bind(since.unix_micros())
            .bind(i64::try_from(min_failures).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query failed-login bursts"))?;
        rows.iter()
            .map(|r| {
                let read = SqlError::db("read a failed-login burst");
                let (ip, n, first, last): (String, i64, i64, i64) =
                    (|| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))()
                        .map_err(read)?;
                Ok(FailedLoginBurst {
                    client_ip: parse_ip(ip)?,
                    failures: n.max(0) as u64,
                    first_at: Timestamp::from_unix_micros(first),
                    last_at: Timestamp::from_unix_micros(last),
                })
            })
            .collect()
    }

    /// Successful logins from an IP the user had never logged in from before `since`
    /// (run with `since` = now minus one day for "first-seen IPs in the last day").
    pub async fn first_seen_ips(&self, since: Timestamp) -> Result<Vec<FirstSeenIp>, SqlError> {
        let rows = sqlx::query(self.inner.sql.first_seen_ips.clone())
            .bind(since.unix_micros())
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query first-seen IPs"))?;
        rows.iter()
            .map(|r| {
                let (actor, ip, first): (String, String, i64) =
                    (|| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))()
                        .map_err(SqlError::db("read a first-seen IP"))?;
                Ok(FirstSeenIp {
                    actor_id: actor,
                    client_ip: parse_ip(ip)?,
                    first_seen: Timestamp::from_unix_micros(first),
                })
            })
            .collect()
    }

    /// Successful MFA disables since `since`, oldest first.
    pub async fn mfa_disables(&self, since: Timestamp) -> Result<Vec<AuditEvent>, SqlError> {
        self.collect(
            AuditQuery::new()
                .action(crate::detect::MFA_DISABLE_ACTION)
                .outcome(authtel_core::Outcome::Success)
                .from(since),
        )
        .await
    }

    /// Lockouts ([`LOCKOUT_ACTIONS`](crate::detect::LOCKOUT_ACTIONS)) since `since`, oldest
    /// first.
    pub async fn lockouts(&self, since: Timestamp) -> Result<Vec<AuditEvent>, SqlError> {
        let mut all = Vec::new();
        for action in crate::detect::LOCKOUT_ACTIONS {
            all.extend(self.collect(AuditQuery::new().action(action).from(since)).await?);
        }
        all.sort_by_key(|e| (e.occurred_at(), e.id()));
        Ok(all)
    }

    async fn collect(&self, mut q: AuditQuery) -> Result<Vec<AuditEvent>, SqlError> {
        q.limit = Some(crate::query::MAX_PAGE);
        let mut all = Vec::new();
        loop {
            let page = self.query(&q).await?;
            all.extend(page.events);
            match page.next {
                Some(c) => q.after = Some(c),
                None => return Ok(all),
            }
        }
    }
}
