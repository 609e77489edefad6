//! The benchmark's results, as a table with the CPU each path took, or as JSON.

use crate::{Args, Cpu, Stats};

/// Prints `results` (direct's first) as `args` asks.
pub fn print(results: &[Stats], args: &Args, notes: &[String]) {
    if args.json {
        let rows: Vec<_> = results
        .iter()
        .map(|s| serde_json::json!({"path": s.name, "p50_us": s.p50_us, "p99_us": s.p99_us, "mean_us": s.mean_us, "sequential_rps": s.sequential_rps, "concurrent_rps": s.concurrent_rps, "bench_cpu_us": s.cpu_us.bench, "proxy_cpu_us": s.cpu_us.proxy, "upload_mb_s": s.upload_mb_s}))
        .collect();
        println!(
            "{}",
            serde_json::json!({"requests": args.requests, "connections": args.connections, "size": args.size, "results": rows, "note": (!notes.is_empty()).then(|| notes.join("; "))})
        );
    } else {
        println!("{} sequential requests per path (after {} warm-up) of a {}-byte HTTPS response over one kept-alive connection, in {} rounds taking turns; then {} connections for {} s", args.requests, args.warmup, args.size, args.rounds, args.connections, args.seconds);
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
                s.concurrent_rps,
                s.upload_mb_s
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
            let Cpu { bench, proxy } = s.cpu_us;
            println!(
            "{:<22} bench {bench:>6.1} µs + proxy {proxy:>6.1} µs; when the cores are the limit, at most {:.2} of direct's throughput (measured {:.2})",
            s.name,
            base.cpu_us.bench / (bench + proxy),
            s.concurrent_rps / base.concurrent_rps
        );
        }
        for note in notes {
            println!("{note}");
        }
    }
}
