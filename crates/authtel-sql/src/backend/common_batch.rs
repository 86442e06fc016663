// Part of the operations both backends share, `include!`d through `common.rs`.

impl BatchWriter<Db> {
    /// Stores `batch`, skipping ids already stored. Records that fail validation or that the
    /// database refuses (a constraint or data error) are refused alone — the batch is split
    /// in halves until they stand alone — and every other record is stored. A transient
    /// failure (database unreachable or busy) is an `Err`, and retrying the same batch is
    /// safe: what was stored is skipped.
    pub async fn write(&self, batch: &[AuditEvent]) -> Result<crate::BatchOutcome, SqlError> {
        let mut refused = Vec::new();
        let mut rows = Vec::with_capacity(batch.len());
        let mut positions = Vec::with_capacity(batch.len());
        // Records were screened and bounded by core's policy when they were made; what is
        // left to refuse is what SQL text cannot hold (a NUL byte, an over-long column).
        for (index, event) in batch.iter().enumerate() {
            match row_of(event) {
                Ok(row) => {
                    rows.push(row);
                    positions.push(index);
                }
                Err(error) => refused.push(crate::RefusedRecord {
                    index,
                    event_id: event.id(),
                    error,
                }),
            }
        }
        let mut pending = Vec::new();
        pending.push(0..rows.len());
        // Each split halves a range and stops at one row: at most 2n - 1 statements, and
        // only when the database refused something.
        while let Some(range) = pending.pop() {
            if range.is_empty() {
                continue;
            }
            match write_batch(&self.store, &rows[range.clone()]).await {
                Ok(()) => {}
                Err(error) if !refuses_a_record(&error) => return Err(error),
                Err(error) if range.len() == 1 => {
                    let index = positions[range.start];
                    refused.push(crate::RefusedRecord {
                        index,
                        event_id: batch[index].id(),
                        error,
                    });
                }
                Err(_) => {
                    let mid = range.start + range.len() / 2;
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                }
            }
        }
        refused.sort_by_key(|r| r.index);
        Ok(crate::BatchOutcome {
            stored: (batch.len() - refused.len()) as u64,
            refused,
        })
    }
}

/// Whether the database refused a row (a constraint or a data error) rather than the
/// statement or the connection: only then is a batch split to find the row.
fn refuses_a_record(error: &SqlError) -> bool {
    match error {
        SqlError::Database {
            cause: sqlx::Error::Database(db),
            ..
        } => {
            use sqlx::error::ErrorKind as K;
            matches!(
                db.kind(),
                K::UniqueViolation | K::ForeignKeyViolation | K::NotNullViolation | K::CheckViolation
            ) || is_data_error_code(db.code().as_deref())
        }
        SqlError::Database {
            cause: sqlx::Error::Encode(_),
            ..
        }
        | SqlError::InvalidEvent { .. } => true,
        _ => false,
    }
}

impl Forwarder for BatchWriter<Db> {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async move {
            let outcome = self.write(batch).await?;
            let Some(first) = outcome.refused.first() else {
                return Ok(());
            };
            let ids: Vec<String> = outcome
                .refused
                .iter()
                .take(10)
                .map(|r| r.event_id.to_string())
                .collect();
            let context = format!(
                "the SQL store refused {} of {} audit records (the other {} are stored): {}{}; first refusal",
                outcome.refused.len(),
                batch.len(),
                outcome.stored,
                ids.join(", "),
                if outcome.refused.len() > ids.len() { ", …" } else { "" },
            );
            Err(ForwardError::permanent(context, first.error.to_string()))
        })
    }
}
