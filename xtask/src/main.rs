//! authtel's development automation, run as `cargo xtask <command>` (the alias lives in
//! `.cargo/config.toml`). Plain `cargo build` / `cargo test -p <crate>` keep working without it;
//! xtask only orchestrates. Dependencies: anyhow and std, on purpose.

mod bench;
mod bench_table;
mod json;
mod services;
mod test_task;
#[cfg(test)]
mod tidy;
mod util;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <command>

Commands:
  test [--no-services]      the one test command: install and start PostgreSQL + tansu (Kafka),
                            then fmt check, clippy -D warnings, rustdoc -D warnings, all tests
                            (nextest if installed), doctests, the core without default
                            features, the facade with each feature alone, promtool on
                            docs/ops; stops the services at the end
  bench [--quick] [--no-services] [--rounds N] [-p CRATE]... [-- <bench args>]
                            run all benches (or those of the -p crates), print a markdown
                            table of medians and ratios to baselines (also written to
                            $CARGO_TARGET_DIR/bench-table.md); --rounds N runs them N times
                            and gives each row's median and min-max over the rounds;
                            naming convention in xtask/src/bench.rs
  services install           apt postgresql + prometheus (only if missing); tansu 0.6.0 built from
                            crates.io with the memory and sqlite engines (12-15 min, once, cached
                            in ~/.cache/authtel/tools; the PyPI wheel's memory-only tansu until then)
  services start            start PostgreSQL (127.0.0.1:54329) and tansu (127.0.0.1:19092);
                            prints export lines: eval \"$(cargo xtask services start)\"
  services stop             stop both
  services env              print the export lines (DATABASE_URL, KAFKA_BOOTSTRAP, TANSU_*, CHROMIUM_BIN, CHROMEDRIVER_BIN)
  services restart-kafka [--storage-engine URL]
                            restart the broker on the same port (e.g. sqlite://tansu.db keeps its
                            log in the services dir across restarts)
  help, --help, -h          this text

`cargo test -p xtask` checks repository policy (xtask/src/tidy.rs).
";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args[1..].iter().any(|a| a == name);
    let only = |allowed: &[&str]| -> Result<()> {
        match args[1..].iter().find(|a| !allowed.contains(&a.as_str())) {
            Some(bad) => bail!(
                "unknown option `{bad}` for `{}`; see `cargo xtask --help`",
                args[0]
            ),
            None => Ok(()),
        }
    };
    match args.first().map(String::as_str) {
        None | Some("help" | "--help" | "-h") => {
            print!("{HELP}");
            Ok(())
        }
        Some("test") => {
            only(&["--no-services"])?;
            test_task::run(test_task::TestOptions {
                no_services: flag("--no-services"),
            })
        }
        Some("bench") => {
            let (own, extra) = match args[1..].iter().position(|a| a == "--") {
                Some(i) => (&args[1..=i], args[i + 2..].to_vec()),
                None => (&args[1..], Vec::new()),
            };
            let mut opts = bench::BenchOptions {
                rounds: 1,
                extra,
                ..bench::BenchOptions::default()
            };
            let mut it = own.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--quick" => opts.quick = true,
                    "--no-services" => opts.no_services = true,
                    "--rounds" => {
                        opts.rounds = it
                            .next()
                            .and_then(|n| n.parse().ok())
                            .filter(|&n: &usize| n >= 1)
                            .context(
                                "`--rounds` takes a whole number of at least 1: `--rounds 3`",
                            )?;
                    }
                    "-p" | "--package" => opts.packages.push(
                        it.next()
                            .context("`-p` takes a crate name: `-p authtel-detect`")?
                            .clone(),
                    ),
                    bad => bail!("unknown option `{bad}` for `bench`; see `cargo xtask --help`"),
                }
            }
            bench::run(opts)
        }
        Some("services") => services::main(&args[1..]),
        Some(other) => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}
