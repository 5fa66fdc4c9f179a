//! The side-by-side table printed at the end.

use crate::monitor::{fmt_ms, Sample};
use hdrhistogram::Histogram;
use std::time::Duration;

/// Everything the table says about one run.
pub struct Summary {
    /// Column title.
    pub title: &'static str,
    /// Length of the load phase.
    pub load: Duration,
    /// Wall time of the whole run (load, then drain or quiet tail).
    pub elapsed: Duration,
    /// Messages per second the producer tried to send.
    pub offered_rate: f64,
    /// Messages made and offered to the queue.
    pub offered: u64,
    /// Offered messages the queue refused (handed back): lost to the pipeline.
    pub refused: u64,
    /// Messages processed by the end of the run.
    pub processed: u64,
    /// Messages processed during the load phase.
    pub processed_in_load: u64,
    /// How far behind schedule the producer was when the load stopped.
    pub behind: Duration,
    /// Queueing latency of every processed message, µs.
    pub latency: Histogram<u64>,
    /// The time series.
    pub samples: Vec<Sample>,
    /// Queue capacity in items.
    pub capacity: usize,
    /// Bytes of one message.
    pub item_bytes: usize,
    /// Bytes of one ring slot (message plus the slot's bookkeeping), and how many slots the
    /// ring allocates for `capacity` (a power of two).
    pub slot_bytes: usize,
    pub slots: usize,
    /// Scale events, for the pool run: (up, down).
    pub scale: Option<(u64, u64)>,
    /// A cross-check from the pool's own accounting, shown under the table.
    pub note: Option<String>,
}

impl Summary {
    fn peak_depth(&self) -> usize {
        self.samples.iter().map(|s| s.depth).max().unwrap_or(0)
    }

    fn workers_range(&self) -> (usize, usize) {
        let w = self.samples.iter().map(|s| s.workers);
        (w.clone().min().unwrap_or(0), w.max().unwrap_or(0))
    }

    /// Processed per second over the last second of the load phase (from the samples).
    fn out_rate_last_second(&self) -> f64 {
        let at = |t: f64| {
            self.samples
                .iter()
                .rev()
                .find(|s| s.t <= t)
                .map_or((0.0, 0), |s| (s.t, s.processed))
        };
        let end = self.load.as_secs_f64();
        let (t1, p1) = at(end);
        let (t0, p0) = at(end - 1.0);
        if t1 > t0 {
            (p1 - p0) as f64 / (t1 - t0)
        } else {
            0.0
        }
    }

    /// Items offered but neither processed nor still counted anywhere.
    pub fn lost(&self) -> u64 {
        self.offered - self.processed
    }
}

fn bytes(n: usize) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n:.0} B")
    }
}

fn ms(us: u64) -> String {
    fmt_ms(us as f64 / 1000.0).trim().to_string()
}

/// Prints the table.
pub fn print(runs: &[Summary]) {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Summary) -> String| {
        rows.push((name.to_string(), runs.iter().map(f).collect()));
    };
    row("offered load", &|r| format!("{:.0} msg/s", r.offered_rate));
    row("accepted, during load", &|r| {
        format!(
            "{:.0} msg/s",
            (r.offered - r.refused) as f64 / r.load.as_secs_f64()
        )
    });
    row("processed, during load", &|r| {
        format!(
            "{:.0} msg/s",
            r.processed_in_load as f64 / r.load.as_secs_f64()
        )
    });
    row("processed, last 1 s of load", &|r| {
        format!("{:.0} msg/s", r.out_rate_last_second())
    });
    row("producer behind schedule", &|r| {
        format!("{:.2} s", r.behind.as_secs_f64())
    });
    row("queue latency p50", &|r| {
        ms(r.latency.value_at_quantile(0.50))
    });
    row("queue latency p99", &|r| {
        ms(r.latency.value_at_quantile(0.99))
    });
    row("queue latency max", &|r| ms(r.latency.max()));
    row("peak depth (items)", &|r| {
        format!("{} / {}", r.peak_depth(), r.capacity)
    });
    row("peak queue memory, used", &|r| {
        bytes(r.peak_depth() * r.item_bytes)
    });
    row("queue memory, allocated", &|r| {
        bytes(r.slots * r.slot_bytes)
    });
    row("messages offered", &|r| r.offered.to_string());
    row("messages processed", &|r| r.processed.to_string());
    row("lost (refused or missing)", &|r| {
        let lost = r.lost();
        if lost == 0 {
            "0 (checked)".to_string()
        } else {
            format!("{lost} LOST ({} refused)", r.refused)
        }
    });
    row("workers (min..max seen)", &|r| {
        let (lo, hi) = r.workers_range();
        format!("{lo}..{hi}")
    });
    row("scale events (up / down)", &|r| match r.scale {
        Some((up, down)) => format!("{up} / {down}"),
        None => "-".to_string(),
    });
    row("run time (load + drain/tail)", &|r| {
        format!(
            "{:.1} + {:.1} s",
            r.load.as_secs_f64(),
            (r.elapsed - r.load).as_secs_f64()
        )
    });

    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let wc = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            rows.iter()
                .map(|row| row.1[i].len())
                .max()
                .unwrap_or(0)
                .max(r.title.len())
        })
        .collect::<Vec<_>>();
    let line = |cells: Vec<&str>| {
        let mut s = format!("{:<w0$}", cells[0]);
        for (c, w) in cells[1..].iter().zip(&wc) {
            s += &format!("  │ {c:>w$}");
        }
        println!("{s}");
    };
    line(
        std::iter::once("")
            .chain(runs.iter().map(|r| r.title))
            .collect(),
    );
    println!(
        "{}",
        "─".repeat(w0)
            + &wc
                .iter()
                .map(|w| format!("──┼─{}", "─".repeat(*w)))
                .collect::<String>()
    );
    for (name, cells) in &rows {
        line(
            std::iter::once(name.as_str())
                .chain(cells.iter().map(String::as_str))
                .collect(),
        );
    }
    for r in runs {
        if let Some(note) = &r.note {
            println!("{}: {note}", r.title);
        }
    }
}
