//! The benchmark's results, as a table with the CPU each path took, or as JSON.

use crate::measure::{ratios_by_round, Cpu};
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
                "sequential_rps": s.sequential_rps, "concurrent_rps": t.rps,
                "concurrent_rps_by_round": t.by_round, "bench_cpu_us": t.cpu.bench,
                "proxy_cpu_us": t.cpu.proxy, "upload_mb_s": u.mb_s, "upload_mb_s_by_round": u.by_round,
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
                s.throughput.rps,
                s.uploads.mb_s
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
        for s in results {
            let Cpu { bench, proxy } = s.throughput.cpu;
            println!(
            "{:<22} bench {bench:>6.1} µs + proxy {proxy:>6.1} µs; when the cores are the limit, at most {:.2} of direct's throughput (measured {:.2})",
            s.name,
            base.throughput.cpu.bench / (bench + proxy),
            s.throughput.rps / base.throughput.rps
        );
        }
        if args.uploads > 0 {
            println!("CPU an upload took (bench: client and upstream):");
            for s in results {
                let Cpu { bench, proxy } = s.uploads.cpu;
                println!(
                "{:<22} bench {:>6.2} ms + proxy {:>6.2} ms; when the cores are the limit, at most {:.2} of direct's MB/s (measured {:.2})",
                s.name,
                bench / 1e3,
                proxy / 1e3,
                base.uploads.cpu.bench / (bench + proxy),
                s.uploads.mb_s / base.uploads.mb_s
            );
            }
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
