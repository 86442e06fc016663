//! `authtel export`: every matching record as NDJSON, fetched page by page with the cursor
//! and written through a buffer, so memory stays at one page whatever the table's size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use authtel_core::audit::Timestamp;

use crate::cli::{ExportArgs, ExportFormat};
use crate::db::{Database, with_store};
use crate::error::{CliError, Finished};
use crate::output::json_line;
use crate::progress::Progress;

/// Output buffer size: large writes, few system calls.
const BUFFER: usize = 256 * 1024;

/// Where the export goes.
enum Sink {
    Stdout(BufWriter<std::io::StdoutLock<'static>>),
    /// A device or pipe given as `--output` (`/dev/null`, a FIFO): written in place, since
    /// renaming over it would replace the device with a regular file.
    Device {
        out: BufWriter<File>,
        path: PathBuf,
    },
    /// Written to `partial`, renamed to `path` once complete.
    File {
        out: BufWriter<File>,
        partial: PathBuf,
        path: PathBuf,
    },
}

impl Sink {
    fn open(path: Option<&Path>) -> Result<Sink, CliError> {
        let Some(path) = path else {
            return Ok(Sink::Stdout(BufWriter::with_capacity(
                BUFFER,
                std::io::stdout().lock(),
            )));
        };
        let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        if special {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|source| CliError::Io {
                    doing: format!("opening {}", path.display()),
                    source,
                })?;
            return Ok(Sink::Device {
                out: BufWriter::with_capacity(BUFFER, file),
                path: path.to_owned(),
            });
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|source| CliError::Io {
            doing: format!("creating {}", partial.display()),
            source,
        })?;
        Ok(Sink::File {
            out: BufWriter::with_capacity(BUFFER, file),
            partial,
            path: path.to_owned(),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(out) => out,
            Sink::Device { out, .. } => out,
            Sink::File { out, .. } => out,
        }
    }

    fn describe(&self) -> String {
        match self {
            Sink::Stdout(_) => "writing the export to stdout".to_owned(),
            Sink::Device { path, .. } => format!("writing the export to {}", path.display()),
            Sink::File { partial, .. } => format!("writing the export to {}", partial.display()),
        }
    }

    /// Flushes, and for a file syncs it and moves it into place.
    fn finish(self) -> Result<(), CliError> {
        let doing = self.describe();
        let io = |source| CliError::Io {
            doing: doing.clone(),
            source,
        };
        match self {
            Sink::Stdout(mut out) => out.flush().map_err(io),
            Sink::Device { mut out, .. } => out.flush().map_err(io),
            Sink::File { out, partial, path } => {
                let file = out.into_inner().map_err(|e| io(e.into_error()))?;
                file.sync_all().map_err(io)?;
                std::fs::rename(&partial, &path).map_err(|source| CliError::Io {
                    doing: format!("renaming {} to {}", partial.display(), path.display()),
                    source,
                })
            }
        }
    }
}

/// Streams the export; progress and the final count go to stderr.
pub(crate) async fn run(db: &Database, args: ExportArgs) -> Result<Finished, CliError> {
    db.require_schema().await?;
    let ExportFormat::Ndjson = args.format;
    let mut q = args.filters.query(Timestamp::now()).limit(args.page_size);
    let mut sink = Sink::open(args.output.as_deref())?;
    let mut progress = Progress::new("exported", args.progress_every, None);
    let mut written = 0u64;
    loop {
        let page = with_store!(&db.store, s => s.query(&q).await)
            .map_err(CliError::store("reading the audit trail for export"))?;
        let out = sink.writer();
        for e in &page.events {
            if let Err(source) = json_line(out, e) {
                return Err(CliError::Io {
                    doing: format!("{} after {written} records", sink.describe()),
                    source,
                });
            }
            written += 1;
        }
        progress.update(written);
        match page.next {
            Some(cursor) => q = q.after(cursor),
            None => break,
        }
    }
    sink.finish()?;
    progress.finish(written);
    Ok(Finished::Ok)
}
