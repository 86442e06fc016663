//! [`Pipeline`]: the forwarders, their lanes, and the handler that feeds them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::catalogue;
use authtel_core::forward::Forwarder;
use authtel_core::registry::{Handler, Registry};
use authtel_core::telemetry::EventRecord;
use tokio::runtime::Handle;

use crate::config::{Dispatch, Settings};
use crate::dead_letter::DeadLetter;
use crate::delivery::{Class, Core};
use crate::env::EnvConfig;
use crate::error::{BuildError, DeadLetterError, FlushError, PublishError, ReplayError};
use crate::files::file_safe;
use crate::forwarder_config::ForwarderConfig;
use crate::inline::InlineLane;
use crate::lane::Lane;
use crate::metrics::ForwarderMetrics;
use crate::queued::QueuedLane;
use crate::signals::{self, Signals};
use crate::spill::SpillStore;

/// Configures a [`Pipeline`]. See [`Pipeline::builder`].
#[derive(Debug, Default)]
pub struct PipelineBuilder {
    defaults: Settings,
    expected: Vec<String>,
    forwarders: Vec<ForwarderConfig>,
    runtime: Option<Handle>,
    registry: Option<Registry>,
}

impl PipelineBuilder {
    /// Adds a forwarder.
    #[must_use]
    pub fn forwarder(mut self, config: ForwarderConfig) -> Self {
        self.forwarders.push(config);
        self
    }

    /// Takes default settings and the expected forwarder kinds from `AUTHTEL_*` variables
    /// (see [`EnvConfig`]). Use [`forwarder_config`](Self::forwarder_config) to start a
    /// forwarder's settings from them.
    ///
    /// ```
    /// use authtel_pipeline::{EnvConfig, Pipeline};
    /// let env = EnvConfig::from_vars([("AUTHTEL_PIPELINE_BATCH_SIZE", "64")]).unwrap();
    /// let builder = Pipeline::builder().env(env);
    /// # #[derive(Debug)] struct Noop;
    /// # impl authtel_core::forward::Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [authtel_core::audit::AuditEvent]) -> authtel_core::forward::ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// assert_eq!(builder.forwarder_config("sql", Noop).settings().batch_size, 64);
    /// ```
    #[must_use]
    pub fn env(mut self, env: EnvConfig) -> Self {
        self.defaults = env.settings;
        self.expected = env.forwarders;
        self
    }

    /// A forwarder config starting from the builder's default settings.
    pub fn forwarder_config(
        &self,
        id: impl Into<String>,
        forwarder: impl Forwarder,
    ) -> ForwarderConfig {
        ForwarderConfig::new(id, forwarder).settings_from(self.defaults.clone())
    }

    /// Forwarder ids the application expects (e.g. from `AUTHTEL_FORWARDERS`). Each one no
    /// forwarder was added for — its crate or feature is not compiled in — produces one
    /// warning at build; nothing else changes.
    #[must_use]
    pub fn expect_forwarders<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.expected.extend(ids.into_iter().map(Into::into));
        self
    }

    /// The runtime async lanes run on, when building outside it.
    #[must_use]
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Where the pipeline's own signals go (`pipeline.forward.error`,
    /// `pipeline.records.dropped`). Default: the registry of the thread that emits.
    #[must_use]
    pub fn signals_to(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Validates everything, opens spill and dead-letter directories, starts workers.
    ///
    /// Queued lanes (`Dispatch::Auto`, the default, and `Dispatch::Async`) run on the
    /// runtime given with [`runtime`](Self::runtime) or the one `build` is called in; for
    /// `Auto` outside any runtime the pipeline starts its own worker thread, so a publisher
    /// never delivers, retries or waits on a destination itself.
    pub fn build(self) -> Result<Pipeline, BuildError> {
        let ambient = self.runtime.or_else(|| Handle::try_current().ok());
        let mut own: Option<tokio::runtime::Runtime> = None;
        let signals = Arc::new(Signals::new(self.registry));
        let mut lanes: Vec<Lane> = Vec::new();
        for cfg in self.forwarders {
            let ForwarderConfig {
                id,
                forwarder,
                settings,
            } = cfg;
            if id.is_empty() || lanes.iter().any(|l| l.id() == id) {
                return Err(BuildError::BadId { id });
            }
            settings.validate().map_err(|source| BuildError::Config {
                forwarder: id.clone(),
                source,
            })?;
            let handle = match (settings.dispatch, &ambient) {
                (Dispatch::Sync, _) => None,
                (Dispatch::Async | Dispatch::Auto, Some(h)) => Some(h.clone()),
                (Dispatch::Async, None) => return Err(BuildError::NoRuntime { forwarder: id }),
                (Dispatch::Auto, None) => {
                    if own.is_none() {
                        own = Some(
                            tokio::runtime::Builder::new_multi_thread()
                                .worker_threads(1)
                                .thread_name("authtel-pipeline")
                                .enable_all()
                                .build()
                                .map_err(BuildError::Runtime)?,
                        );
                    }
                    own.as_ref().map(|rt| rt.handle().clone())
                }
            };
            if handle.is_none() {
                crate::blocking::ensure_private().map_err(BuildError::Runtime)?;
            }
            let dir_error = |path: PathBuf, source| BuildError::Directory {
                forwarder: id.clone(),
                path,
                source,
            };
            let spill = match &settings.spill_dir {
                Some(dir) => {
                    let dir = dir.join(file_safe(&id));
                    let store = SpillStore::open(
                        dir.clone(),
                        settings.spill_max_bytes,
                        settings.spill_max_line_bytes,
                        settings.fsync,
                    )
                    .map_err(|e| dir_error(dir.clone(), e))?;
                    if !store.is_empty() {
                        tracing::info!(
                            forwarder = %id,
                            bytes = store.bytes(),
                            dir = %dir.display(),
                            "authtel pipeline found spilled records from an earlier run; replaying them in order"
                        );
                    }
                    Some(store)
                }
                None => None,
            };
            // Dead letters go where the application said: its dead-letter directory, else
            // its spill directory; never a guessable shared temporary path.
            let dead_letter = match settings
                .dead_letter_dir
                .as_ref()
                .or(settings.spill_dir.as_ref())
            {
                Some(dir) => {
                    Some(DeadLetter::open(dir, &id).map_err(|e| dir_error(dir.clone(), e))?)
                }
                None => {
                    tracing::warn!(
                        forwarder = %id,
                        "authtel pipeline forwarder has no dead_letter_dir (AUTHTEL_PIPELINE_DEAD_LETTER_DIR) and no spill_dir: records it gives up on will be counted as dropped, not kept"
                    );
                    None
                }
            };
            let core = Core::new(id, forwarder, settings, dead_letter, Arc::clone(&signals));
            let lane = match handle {
                None => Lane::Inline(Box::new(InlineLane::new(core, spill))),
                Some(handle) => {
                    let lane = Arc::new(QueuedLane::new(core, spill));
                    lane.spawn_workers(&handle);
                    Lane::Queued(lane)
                }
            };
            lanes.push(lane);
        }
        let mut warnings = Vec::new();
        for kind in self.expected {
            if !lanes.iter().any(|l| l.id() == kind) {
                let text = format!(
                    "forwarder {kind:?} is configured (AUTHTEL_FORWARDERS) but not available in this build; enable the authtel feature or add the crate that provides it; the other forwarders run normally"
                );
                tracing::warn!(forwarder = %kind, "{text}");
                warnings.push(text);
            }
        }
        Ok(Pipeline {
            inner: Arc::new(Inner {
                lanes,
                warnings,
                runtime: own,
                shut_down: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }
}

/// How long dropping a pipeline that runs its own worker thread waits for it to deliver.
const DROP_FLUSH: Duration = Duration::from_secs(2);

struct Inner {
    lanes: Vec<Lane>,
    warnings: Vec<String>,
    /// The pipeline's own worker thread, for `Dispatch::Auto` outside a runtime.
    runtime: Option<tokio::runtime::Runtime>,
    /// `shutdown` ran: dropping need not flush.
    shut_down: std::sync::atomic::AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for lane in &self.lanes {
            lane.close();
        }
        // The pipeline's own worker thread dies with it: give it a moment to deliver (or
        // spill) what is queued, like a flush guard would, and say what is left. Then let
        // the runtime go in the background (dropping it blocks, and panics inside another
        // runtime).
        if let Some(rt) = self.runtime.take() {
            let deadline = Instant::now() + DROP_FLUSH;
            let shut_down = self.shut_down.load(std::sync::atomic::Ordering::Acquire);
            for lane in self.lanes.iter().filter(|_| !shut_down) {
                if let Err(e) = lane.flush(deadline) {
                    tracing::error!(error = %e, "authtel pipeline dropped without shutdown; keep a flush_guard in main or call shutdown");
                }
            }
            rt.shutdown_background();
        }
    }
}

/// Routes audit records to forwarders: queues, batches, retries, spills, dead-letters.
///
/// Cloning is cheap and shares the pipeline. Attach it to a registry to turn audited
/// events into [`AuditEvent`]s, or [`publish`](Pipeline::publish) records directly.
///
/// ```
/// use authtel_core::{catalogue, metadata::Metadata, registry::{Registry, Selection}, telemetry};
/// use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
/// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
/// # #[derive(Debug, Default)] struct Count(std::sync::atomic::AtomicUsize);
/// # impl Forwarder for Count { fn forward<'a>(&'a self, b: &'a [AuditEvent]) -> ForwardFuture<'a> {
/// #     self.0.fetch_add(b.len(), std::sync::atomic::Ordering::SeqCst); Box::pin(async { Ok(()) }) } }
/// let pipeline = Pipeline::builder()
///     .forwarder(ForwarderConfig::new("audit-store", Count::default()).dispatch(Dispatch::Sync))
///     .build()
///     .unwrap();
/// let registry = Registry::new();
/// registry.attach("pipeline", Selection::All, pipeline.handler()).unwrap();
/// let _scope = registry.enter();
/// telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), Metadata::new().user_id("u_1"));
/// assert_eq!(pipeline.metrics()[0].delivered, 1);
/// ```
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("forwarders", &self.inner.lanes)
            .finish()
    }
}

impl Pipeline {
    /// Starts configuring a pipeline.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// Publishes an audit record to every forwarder. Audit records are never sampled or
    /// rate limited. The record was screened by core's policy when it was made. Returns the
    /// first forwarder's refusal, if any; the others still got it.
    #[inline]
    pub fn publish(&self, event: AuditEvent) -> Result<(), PublishError> {
        self.route(event, Class::Audit, None)
    }

    /// Publishes an audit record from async code: when a queued lane's queue is full the
    /// calling task waits for room — it yields, the runtime's threads go on — instead of
    /// applying the backpressure policy, so nothing is dropped or refused for lack of room
    /// (with `Backpressure::Spill` the record spills instead). It waits as long as it
    /// takes; wrap it in `tokio::time::timeout` for a bound (dropping the future leaves
    /// the record unpublished for that forwarder). Inline lanes deliver as in
    /// [`publish`](Self::publish).
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}, outcome::Outcome};
    /// # #[derive(Debug)] struct Noop;
    /// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// use authtel_pipeline::{ForwarderConfig, Pipeline};
    /// # #[tokio::main] async fn main() {
    /// let p = Pipeline::builder().forwarder(ForwarderConfig::new("sql", Noop)).build().unwrap();
    /// p.publish_async(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap()).await.unwrap();
    /// # }
    /// ```
    pub async fn publish_async(&self, event: AuditEvent) -> Result<(), PublishError> {
        let mut result = Ok(());
        for lane in &self.inner.lanes {
            let r = lane.publish_async(event.clone()).await;
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Publishes a high-volume telemetry record: subject to sampling and rate limiting —
    /// unless its action names a security signal, which is always treated as audit.
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}, outcome::Outcome};
    /// # #[derive(Debug)] struct Noop;
    /// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
    /// let p = Pipeline::builder()
    ///     .forwarder(ForwarderConfig::new("otlp", Noop).dispatch(Dispatch::Sync).sample_rate(0.0))
    ///     .build().unwrap();
    /// p.publish_telemetry(AuditEvent::new("token.verify.stop", Outcome::Success).unwrap()).unwrap();
    /// p.publish_telemetry(AuditEvent::new("security.lockout", Outcome::Failure).unwrap()).unwrap();
    /// let m = &p.metrics()[0];
    /// assert_eq!((m.sampled_out, m.delivered), (1, 1));
    /// ```
    pub fn publish_telemetry(&self, event: AuditEvent) -> Result<(), PublishError> {
        let class = match catalogue::by_name(event.action()) {
            Some(e) if e.is_security_signal() => Class::Audit,
            _ => Class::Telemetry,
        };
        self.route(event, class, None)
    }

    /// Publishes, waiting at most `timeout` for queue room whatever the backpressure
    /// policy. On timeout the record spills if a spill directory is set (then `Ok`), else
    /// [`PublishError::Timeout`].
    pub fn publish_with_timeout(
        &self,
        event: AuditEvent,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        self.route(event, Class::Audit, Some(timeout))
    }

    #[inline]
    fn route(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        // No screening here: an `AuditEvent` is screened and bounded when it is made, so
        // what reaches a queue, a spill file or a dead-letter file already passed core's
        // one policy.
        let Some((last, rest)) = self.inner.lanes.split_last() else {
            return Ok(());
        };
        let mut result = Ok(());
        for lane in rest {
            let r = lane.publish(event.clone(), class, timeout);
            if result.is_ok() {
                result = r;
            }
        }
        let r = last.publish(event, class, timeout);
        result.and(r)
    }

    /// Waits until every accepted record is delivered, spilled or dead-lettered, or the
    /// deadline passes (then what is still queued spills if it can). Blocks the thread:
    /// from async code call it in `spawn_blocking` or a multi-thread runtime.
    pub fn flush(&self, deadline: Instant) -> Result<(), FlushError> {
        let mut result = Ok(());
        for lane in &self.inner.lanes {
            let r = lane.flush(deadline);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Stops accepting records into memory (later ones spill, or are refused), delivers
    /// what it can until `deadline`, then stops: when it returns no worker will call a
    /// forwarder again (calls still running at the deadline are cut off), and the
    /// forwarders are shut down. With a spill directory everything not delivered is on
    /// disk; without one, [`FlushError::pending`] is the exact number of records that were
    /// neither delivered, dead-lettered nor spilled — they die with the process.
    /// Idempotent.
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}, outcome::Outcome};
    /// # #[derive(Debug)] struct Noop;
    /// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// use authtel_pipeline::{ForwarderConfig, Pipeline};
    /// use std::time::{Duration, Instant};
    /// let p = Pipeline::builder().forwarder(ForwarderConfig::new("x", Noop)).build().unwrap();
    /// p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap()).unwrap();
    /// p.shutdown(Instant::now() + Duration::from_secs(5)).unwrap();
    /// assert_eq!(p.metrics()[0].delivered, 1);
    /// ```
    pub fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        self.inner
            .shut_down
            .store(true, std::sync::atomic::Ordering::Release);
        let mut result = Ok(());
        for lane in &self.inner.lanes {
            let r = lane.shutdown(deadline);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Waits until every forwarder's spill has been replayed and nothing waits in memory,
    /// at most until `deadline` — e.g. after an outage, before a planned restart. The
    /// first forwarder still behind is named in the error.
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
    /// # #[derive(Debug)] struct Noop;
    /// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// use authtel_pipeline::{ForwarderConfig, Pipeline};
    /// use std::time::{Duration, Instant};
    /// let p = Pipeline::builder().forwarder(ForwarderConfig::new("x", Noop)).build().unwrap();
    /// p.wait_replayed(Instant::now() + Duration::from_secs(5)).unwrap();
    /// ```
    pub fn wait_replayed(&self, deadline: Instant) -> Result<(), ReplayError> {
        for lane in &self.inner.lanes {
            if !lane.wait_replayed(deadline) {
                return Err(ReplayError {
                    forwarder: lane.id().to_owned(),
                    spill_bytes: lane.metrics().spill_bytes,
                });
            }
        }
        Ok(())
    }

    /// Publishes the records of a dead-letter file again, into the forwarder `forwarder`
    /// only; returns how many were accepted. Records keep their ids, so destinations
    /// deduplicate a record that did arrive. Move the file aside first (`mv
    /// kafka.dead.jsonl kafka.dead.replaying`): records that fail again are appended to
    /// the forwarder's dead-letter file.
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
    /// # #[derive(Debug)] struct Noop;
    /// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
    /// let dir = std::env::temp_dir().join(format!("authtel-doc-replay-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let file = dir.join("kafka.dead.replaying");
    /// let event = AuditEvent::new("auth.login.stop", authtel_core::outcome::Outcome::Failure).unwrap();
    /// std::fs::write(&file, format!("{}\n", serde_json::json!({"reason": "x", "attempts": 5, "event": event}))).unwrap();
    /// let p = Pipeline::builder()
    ///     .forwarder(ForwarderConfig::new("kafka", Noop).dispatch(Dispatch::Sync))
    ///     .build().unwrap();
    /// assert_eq!(p.replay_dead_letters("kafka", &file).unwrap(), 1);
    /// assert_eq!(p.metrics()[0].delivered, 1);
    /// # std::fs::remove_dir_all(dir).unwrap();
    /// ```
    pub fn replay_dead_letters(
        &self,
        forwarder: &str,
        file: &std::path::Path,
    ) -> Result<u64, DeadLetterError> {
        let Some(lane) = self.inner.lanes.iter().find(|l| l.id() == forwarder) else {
            return Err(DeadLetterError::UnknownForwarder {
                forwarder: forwarder.to_owned(),
                known: self
                    .inner
                    .lanes
                    .iter()
                    .map(|l| l.id())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let read = crate::dead_letter::read_dead_letters(file)?;
        if read.unreadable_lines > 0 {
            tracing::warn!(
                forwarder,
                file = %file.display(),
                lines = read.unreadable_lines,
                "authtel pipeline skipped unreadable dead-letter lines"
            );
        }
        let mut accepted = 0;
        for event in read.events {
            // Decoding a dead-letter line applies core's policy, so a file edited by hand
            // is screened again (a line over a bound is unreadable, never replayed).
            if lane.publish(event, Class::Audit, None).is_ok() {
                accepted += 1;
            }
        }
        Ok(accepted)
    }

    /// A guard that flushes (waiting at most `timeout`) when dropped; keep it alive in
    /// `main` so records in memory are not stranded at exit.
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
    /// # #[derive(Debug)] struct Noop;
    /// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// # use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
    /// let pipeline = Pipeline::builder().forwarder(ForwarderConfig::new("x", Noop).dispatch(Dispatch::Sync)).build().unwrap();
    /// let _guard = pipeline.flush_guard(std::time::Duration::from_secs(5));
    /// ```
    pub fn flush_guard(&self, timeout: Duration) -> FlushGuard {
        FlushGuard {
            pipeline: self.clone(),
            timeout,
        }
    }

    /// A handler to attach to a registry: audited events become records (span starts and
    /// the pipeline's own signals are skipped).
    pub fn handler(&self) -> Pipeline {
        self.clone()
    }

    /// A snapshot of every forwarder's counters, in the order they were added.
    pub fn metrics(&self) -> Vec<ForwarderMetrics> {
        self.inner.lanes.iter().map(|l| l.metrics()).collect()
    }

    /// The warnings printed at build (forwarders configured but not available).
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }
}

impl Handler for Pipeline {
    fn handle(&self, record: &EventRecord<'_>) {
        if signals::emitting() {
            return;
        }
        if let Some(event) = AuditEvent::from_record(record) {
            // Failures are counted and reported by the lane; a handler has nobody to tell.
            let _ = self.publish(event);
        }
    }
}

/// Flushes the pipeline when dropped. See [`Pipeline::flush_guard`].
#[must_use = "the guard flushes when dropped; dropping it at once flushes at once"]
#[derive(Debug)]
pub struct FlushGuard {
    pipeline: Pipeline,
    timeout: Duration,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        if let Err(e) = self.pipeline.flush(Instant::now() + self.timeout) {
            tracing::error!(error = %e, "authtel pipeline flush at exit did not finish");
        }
    }
}
