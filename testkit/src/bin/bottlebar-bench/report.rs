//! The benchmark's results, as a table with the CPU each path took, or as JSON.

use crate::measure::{ratios_by_round, Cpu, Figure};
use crate::{Args, Stats};

/// Prints `results` (direct's first) as `args` asks.
pub fn print(results: &[Stats], args: &Args, notes: &[String]) {
    if args.json {
        let rows: Vec<_> = results
        .iter()
        .map(|s| {
            let (t, u) = (&s.throughput, &s.uploads);
            serde_json::json!({
                "path": s.name, "p50_us": s.p50_us, "p99_us": s.p99_us, "mean_us": s.mean_us,
                "sequential_rps": s.sequential_rps, "concurrent_rps": t.total,
                "concurrent_rps_by_round": t.by_round, "bench_cpu_us": t.cpu.bench,
                "proxy_cpu_us": t.cpu.proxy, "upload_mb_s": u.total, "upload_mb_s_by_round": u.by_round,
                "upload_bench_cpu_us": u.cpu.bench, "upload_proxy_cpu_us": u.cpu.proxy,
            })
        })
        .collect();
        println!(
            "{}",
            serde_json::json!({"requests": args.requests, "connections": args.connections, "size": args.size, "results": rows, "note": (!notes.is_empty()).then(|| notes.join("; "))})
        );
    } else {
        println!("{} sequential requests per path (after {} warm-up) of a {}-byte HTTPS response over one kept-alive connection, in {} rounds taking turns; then {} connections for {} s and {} uploads of {} KiB, each in {} rounds taking turns", args.requests, args.warmup, args.size, args.rounds, args.connections, args.seconds, args.uploads, args.upload_kib, args.throughput_rounds);
        println!(
            "{:<22} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12}",
            "path", "p50 µs", "p99 µs", "mean µs", "seq req/s", "conc req/s", "upload MB/s"
        );
        let base = &results[0];
        for s in results {
            println!(
                "{:<22} {:>10.0} {:>10.0} {:>10.0} {:>12.0} {:>12.0} {:>12.1}",
                s.name,
                s.p50_us,
                s.p99_us,
                s.mean_us,
                s.sequential_rps,
                s.throughput.total,
                s.uploads.total
            );
        }
        for s in &results[1..] {
            println!(
                "added by {}: p50 +{:.0} µs, p99 +{:.0} µs",
                s.name,
                s.p50_us - base.p50_us,
                s.p99_us - base.p99_us
            );
        }
        println!(
            "CPU a request on {} connections (bench: client and upstream):",
            args.connections
        );
        print_cpu(results, |s| &s.throughput, Unit::Micros, "throughput");
        if args.uploads > 0 {
            println!("CPU an upload took (bench: client and upstream):");
            print_cpu(results, |s| &s.uploads, Unit::Millis, "MB/s");
        }
        println!(
            "÷ direct in each round (lowest to highest): on {} connections | uploads",
            args.connections
        );
        for s in &results[1..] {
            let spread = |path: &[f64], direct: &[f64]| {
                let r = ratios_by_round(path, direct);
                r.iter()
                    .map(|x| format!("{x:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!(
                "{:<22} {} | {}",
                s.name,
                spread(&s.throughput.by_round, &base.throughput.by_round),
                spread(&s.uploads.by_round, &base.uploads.by_round)
            );
        }
        for note in notes {
            println!("{note}");
        }
    }
}

/// How a CPU time is printed.
enum Unit {
    Micros,
    Millis,
}

/// Each path's CPU a request of `figure` took, in the bench and in the
/// proxy, and the share of direct's `what` that allows when the cores are
/// the limit, beside the share measured.
fn print_cpu(results: &[Stats], figure: impl Fn(&Stats) -> &Figure, unit: Unit, what: &str) {
    let base = figure(&results[0]);
    let (scale, name, places) = match unit {
        Unit::Micros => (1.0, "µs", 1),
        Unit::Millis => (1e-3, "ms", 2),
    };
    for s in results {
        let f = figure(s);
        let Cpu { bench, proxy } = f.cpu;
        println!(
            "{:<22} bench {:>6.*} {name} + proxy {:>6.*} {name}; when the cores are the limit, at most {:.2} of direct's {what} (measured {:.2})",
            s.name,
            places,
            bench * scale,
            places,
            proxy * scale,
            base.cpu.bench / (bench + proxy),
            f.total / base.total
        );
    }
}
