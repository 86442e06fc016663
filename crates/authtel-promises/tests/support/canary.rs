//! One canary run: plant every combination, push it through every sink, search every
//! output byte for every needle in every encoding.

use std::collections::BTreeMap;

use super::needles::{Hit, Search};
use super::plant::{self, Emitted, Plant, Position};
use super::sinks::{Sinks, quiet_panics};

/// What a run found.
#[derive(Debug)]
pub struct Report {
    pub plants: usize,
    pub out_of_scope: usize,
    pub refused_by_type: usize,
    pub sinks: Vec<String>,
    pub patterns: usize,
    pub hits: Vec<Hit>,
    /// Records built from events, and how many were not already screened.
    pub records_checked: u64,
    pub records_unscreened: u64,
    pub plants_list: Vec<Plant>,
}

impl Report {
    /// Prints the matrix size and every hit, grouped.
    pub fn print(&self, title: &str) {
        let positions: std::collections::BTreeSet<String> =
            self.plants_list.iter().map(|p| p.position.name()).collect();
        println!(
            "{title}: {} secret classes x {} forms x {} positions = {} in-scope plants \
             ({} combinations out of scope, {} records refused whole by their type), \
             x {} sinks = {} (plant, sink) cells; {} encoded needles searched; hits: {}",
            super::secrets::classes(),
            super::secrets::FORMS.len(),
            positions.len(),
            self.plants,
            self.out_of_scope,
            self.refused_by_type,
            self.sinks.len(),
            self.plants * self.sinks.len(),
            self.patterns,
            self.hits.len()
        );
        println!("sinks: {}", self.sinks.join(", "));
        println!(
            "records built from events: {}, not already screened: {}",
            self.records_checked, self.records_unscreened
        );
        let mut grouped: BTreeMap<(String, &str, &str, String), usize> = BTreeMap::new();
        for h in &self.hits {
            let p = &self.plants_list[h.plant];
            *grouped
                .entry((p.position.name(), p.class, p.form, h.sink.clone()))
                .or_default() += 1;
        }
        for ((position, class, form, sink), n) in &grouped {
            println!("LEAK {position} {class} {form} -> {sink} ({n})");
        }
        for h in self.hits.iter().take(40) {
            let p = &self.plants_list[h.plant];
            println!(
                "  {} {} {} [{}] in {}: …{}…",
                p.position.name(),
                p.class,
                p.form,
                h.encoding,
                h.sink,
                h.context.escape_debug()
            );
        }
    }
}

/// Plants `plants` through `sinks` and searches what they wrote.
pub async fn run(sinks: &Sinks, positions: &[Position]) -> Report {
    quiet_panics();
    let started = std::time::Instant::now();
    let (plants, out_of_scope) = plant::plants(positions);
    let mut emitted = Emitted::default();
    let list = plants.clone();
    let emitted = {
        let registry = sinks.registry.clone();
        // The emission is synchronous (spans, a synchronous forwarder); it runs on a
        // thread named `plant` so its deliberate panics stay quiet.
        let sinks_ref: &Sinks = sinks;
        tokio::task::block_in_place(|| {
            std::thread::scope(|s| {
                std::thread::Builder::new()
                    .name("plant".into())
                    .spawn_scoped(s, || {
                        let _scope = registry.enter();
                        for p in &list {
                            plant::emit(p, sinks_ref, &mut emitted);
                        }
                        emitted
                    })
                    .unwrap()
                    .join()
                    .unwrap()
            })
        })
    };
    println!("emitted in {:?}", started.elapsed());
    // The hand-built records also go straight into each SQL store, in transactions.
    for chunk in plants
        .iter()
        .filter(|p| {
            matches!(
                p.position,
                Position::Record(_) | Position::RecordKey(_) | Position::Decoded(_)
            )
        })
        .filter_map(plant::record)
        .collect::<Vec<_>>()
        .chunks(200)
    {
        let mut tx = sinks.sqlite.begin().await.unwrap();
        for e in chunk {
            let _ = tx.record(e).await;
        }
        tx.commit().await.unwrap();
        if let Some(pg) = &sinks.postgres {
            // Every record core let exist (screened and bounded when decoded) is one the
            // store accepts.
            let mut tx = pg.begin().await.unwrap();
            for e in chunk {
                tx.record(e).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
    println!("recorded in transactions at {:?}", started.elapsed());
    sinks.settle().await;
    println!("settled at {:?}", started.elapsed());
    let outputs = sinks.outputs().await;
    for (name, bytes) in &outputs {
        assert!(
            bytes.len() > 64,
            "{name} wrote almost nothing ({} bytes): the search would prove nothing",
            bytes.len()
        );
    }
    println!("read outputs at {:?}", started.elapsed());
    let needles: Vec<Vec<String>> = plants.iter().map(|p| p.needles.clone()).collect();
    let search = Search::new(&needles);
    let mut hits = Vec::new();
    for (name, bytes) in &outputs {
        hits.extend(search.hits(name, bytes));
    }
    println!("searched at {:?}", started.elapsed());
    Report {
        plants: plants.len(),
        out_of_scope,
        refused_by_type: emitted.refused_by_type,
        sinks: outputs.iter().map(|(n, _)| n.clone()).collect(),
        patterns: search.patterns(),
        hits,
        records_checked: sinks
            .records_checked
            .load(std::sync::atomic::Ordering::Relaxed),
        records_unscreened: sinks
            .records_unscreened
            .load(std::sync::atomic::Ordering::Relaxed),
        plants_list: plants,
    }
}
