//! `bottlebar-perf-check`: compares a short run of each benchmark with the
//! baseline committed in `docs/performance.md`, as ratios.
//!
//! Every figure compared is a ratio measured within one run against its
//! peer (Bottlebar's launch ÷ the raw `docker` script's, the sidecar's
//! latency ÷ direct, …) or the idle app's memory, never an absolute time:
//! this machine is noisy, and a flaky check that blocks landing is worse
//! than none. A figure more than 25 % worse than its baseline is a warning;
//! only one more than 2× worse fails (exit 1).
//!
//! The baseline is the JSON block after the `<!-- perf-baseline -->` marker
//! in `docs/performance.md`; `--write` replaces it with this run's figures
//! (after an intended change, with the figures explained beside it).

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "bottlebar-perf-check")]
struct Args {
    /// The Markdown file holding the baseline block.
    #[arg(long, default_value = "docs/performance.md")]
    doc: PathBuf,
    /// `bottlebar-bench-launch --json` output.
    #[arg(long)]
    launch: Option<PathBuf>,
    /// `bottlebar-bench --json` output.
    #[arg(long)]
    proxy: Option<PathBuf>,
    /// `bottlebar-measure-idle --json` output.
    #[arg(long)]
    idle: Option<PathBuf>,
    /// Replace the baseline with this run's figures instead of comparing.
    #[arg(long)]
    write: bool,
}

/// The marker before the baseline's JSON block.
const MARKER: &str = "<!-- perf-baseline -->";
/// Worse than the baseline by more than this: a warning.
const WARN_AT: f64 = 1.25;
/// Worse than the baseline by more than this: the check fails.
const FAIL_AT: f64 = 2.0;

/// One compared figure.
struct Metric {
    key: &'static str,
    what: &'static str,
    /// Whether a larger value is better (a share of throughput).
    higher_is_better: bool,
    value: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let metrics = measured(&args)?;
    if metrics.is_empty() {
        bail!("no results given (--launch, --proxy, --idle)");
    }
    let doc = std::fs::read_to_string(&args.doc)
        .with_context(|| format!("reading {}", args.doc.display()))?;
    if args.write {
        let mut figures = Map::new();
        for m in &metrics {
            figures.insert(m.key.into(), json!((m.value * 1000.0).round() / 1000.0));
        }
        let text = with_baseline(&doc, &Value::Object(figures))?;
        std::fs::write(&args.doc, text)?;
        println!("baseline written to {}", args.doc.display());
        return Ok(());
    }
    let baseline = baseline(&doc)?;
    let mut failed = Vec::new();
    println!("| figure | baseline | this run | worse by | |");
    println!("|---|---|---|---|---|");
    for m in &metrics {
        let Some(base) = baseline.get(m.key).and_then(Value::as_f64) else {
            println!("| {} | — | {:.3} | | no baseline |", m.what, m.value);
            continue;
        };
        let worse = worse_by(base, m.value, m.higher_is_better);
        let verdict = if worse > FAIL_AT {
            failed.push(m.what);
            "FAIL (> 2×)"
        } else if worse > WARN_AT {
            "warning (> +25 %)"
        } else {
            "ok"
        };
        println!(
            "| {} | {base:.3} | {:.3} | {:+.0} % | {verdict} |",
            m.what,
            m.value,
            (worse - 1.0) * 100.0
        );
    }
    if !failed.is_empty() {
        bail!(
            "more than 2× worse than the committed baseline: {}",
            failed.join(", ")
        );
    }
    Ok(())
}

/// How many times worse `now` is than `base` (1.0 = the same, < 1 better).
fn worse_by(base: f64, now: f64, higher_is_better: bool) -> f64 {
    let (base, now) = (base.max(1e-9), now.max(1e-9));
    if higher_is_better {
        base / now
    } else {
        now / base
    }
}

fn read_json(path: &PathBuf) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn number(v: &Value, pointer: &str, file: &str) -> Result<f64> {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .with_context(|| format!("{file}: no number at {pointer}"))
}

/// The figures of this run, from the benchmarks' JSON.
fn measured(args: &Args) -> Result<Vec<Metric>> {
    let mut out = Vec::new();
    if let Some(path) = &args.launch {
        let v = read_json(path)?;
        let f = "launch results";
        out.push(Metric {
            key: "launch_ratio",
            what: "launch: `bottle up`+`down` ÷ raw docker script",
            higher_is_better: false,
            value: number(&v, "/ratio", f)?,
        });
        out.push(Metric {
            key: "launch_ratio_without_selftest",
            what: "launch without the self-test ÷ raw docker script",
            higher_is_better: false,
            value: number(&v, "/ratio_without_selftest", f)?,
        });
        out.push(Metric {
            key: "selftest_share",
            what: "self-test ÷ raw docker script",
            higher_is_better: false,
            value: number(&v, "/selftest_ms", f)? / number(&v, "/raw_ms", f)?,
        });
    }
    if let Some(path) = &args.proxy {
        let v = read_json(path)?;
        let row = |name: &str| -> Result<Value> {
            v["results"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["path"] == name))
                .cloned()
                .with_context(|| format!("proxy results: no `{name}` row"))
        };
        let (direct, sidecar) = (row("direct")?, row("bottlebar-sidecar")?);
        let f = "proxy results";
        // Each as the sidecar's figure over the direct one.
        let ratios = [
            (
                "proxy_p50_ratio",
                "proxy: p50 latency ÷ direct",
                false,
                "/p50_us",
            ),
            (
                "proxy_p99_ratio",
                "proxy: p99 latency ÷ direct",
                false,
                "/p99_us",
            ),
            (
                "proxy_upload_share",
                "proxy: 1 MiB uploads through secret scanning, MB/s ÷ direct",
                true,
                "/upload_mb_s",
            ),
            (
                "proxy_throughput_share",
                "proxy: throughput on 8 connections ÷ direct",
                true,
                "/concurrent_rps",
            ),
        ];
        for (key, what, higher_is_better, field) in ratios {
            out.push(Metric {
                key,
                what,
                higher_is_better,
                value: number(&sidecar, field, f)? / number(&direct, field, f)?,
            });
        }
        // Beside the two floors too, when they were measured: the kernel's
        // second leg is in the relay and the sidecar alike, and TLS ended
        // both ways and HTTP passed on in the bare interceptor and the
        // sidecar alike, so these are the sidecar's own share, and steadier
        // than a share of direct on a noisy machine.
        let floors = [
            (
                "bare relay",
                [
                    (
                        "proxy_throughput_of_relay",
                        "proxy: throughput on 8 connections ÷ bare relay",
                        "/concurrent_rps",
                    ),
                    (
                        "proxy_upload_of_relay",
                        "proxy: 1 MiB uploads through secret scanning ÷ bare relay",
                        "/upload_mb_s",
                    ),
                ],
            ),
            (
                "bare interception",
                [
                    (
                        "proxy_throughput_of_interception",
                        "proxy: throughput on 8 connections ÷ bare interception",
                        "/concurrent_rps",
                    ),
                    (
                        "proxy_upload_of_interception",
                        "proxy: 1 MiB uploads through secret scanning ÷ bare interception",
                        "/upload_mb_s",
                    ),
                ],
            ),
        ];
        for (name, figures) in floors {
            let Ok(floor) = row(name) else { continue };
            for (key, what, field) in figures {
                out.push(Metric {
                    key,
                    what,
                    higher_is_better: true,
                    value: number(&sidecar, field, f)? / number(&floor, field, f)?,
                });
            }
        }
    }
    if let Some(path) = &args.idle {
        let v = read_json(path)?;
        out.push(Metric {
            key: "idle_closed_pss_mib",
            what: "idle app, window closed: PSS (MiB)",
            higher_is_better: false,
            value: number(&v, "/window_closed/pss_mib", "idle results")?,
        });
        out.push(Metric {
            key: "idle_after_use_pss_mib",
            what: "idle app, window closed after use: PSS (MiB)",
            higher_is_better: false,
            value: number(&v, "/window_closed_after_use/pss_mib", "idle results")?,
        });
    }
    Ok(out)
}

/// The JSON block after the marker: (its start, its end, its text).
fn block(doc: &str) -> Result<(usize, usize, &str)> {
    let at = doc
        .find(MARKER)
        .with_context(|| format!("no `{MARKER}` marker"))?;
    let open = doc[at..]
        .find("```json\n")
        .map(|i| at + i + "```json\n".len())
        .context("no ```json block after the baseline marker")?;
    let close = doc[open..]
        .find("```")
        .map(|i| open + i)
        .context("the baseline's ```json block is not closed")?;
    Ok((open, close, &doc[open..close]))
}

fn baseline(doc: &str) -> Result<Map<String, Value>> {
    let (_, _, text) = block(doc)?;
    match serde_json::from_str(text).context("the baseline block is not JSON")? {
        Value::Object(m) => Ok(m),
        _ => bail!("the baseline block is not a JSON object"),
    }
}

/// `doc` with the baseline block replaced by `figures`, keeping figures
/// this run did not measure.
fn with_baseline(doc: &str, figures: &Value) -> Result<String> {
    let (open, close, _) = block(doc)?;
    let mut merged = baseline(doc).unwrap_or_default();
    if let Value::Object(new) = figures {
        merged.extend(new.clone());
    }
    let text = serde_json::to_string_pretty(&Value::Object(merged))?;
    Ok(format!("{}{text}\n{}", &doc[..open], &doc[close..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# x\n\n<!-- perf-baseline -->\n```json\n{\"launch_ratio\": 1.5, \"other\": 2}\n```\n\nafter\n";

    #[test]
    fn reads_and_rewrites_the_baseline_block() {
        let b = baseline(DOC).unwrap();
        assert_eq!(b["launch_ratio"], json!(1.5));
        let out = with_baseline(DOC, &json!({"launch_ratio": 1.25})).unwrap();
        let b = baseline(&out).unwrap();
        assert_eq!(b["launch_ratio"], json!(1.25));
        assert_eq!(b["other"], json!(2), "figures not measured are kept");
        assert!(
            out.starts_with("# x\n") && out.ends_with("\n\nafter\n"),
            "{out}"
        );
        assert!(baseline("no marker").is_err());
        assert!(baseline("<!-- perf-baseline -->\n```json\n[1]\n```").is_err());
    }

    #[test]
    fn worse_is_measured_in_the_figure_s_own_direction() {
        assert_eq!(worse_by(1.0, 1.5, false), 1.5);
        assert_eq!(worse_by(0.4, 0.2, true), 2.0);
        assert!(worse_by(0.4, 0.5, true) < 1.0);
        assert!(worse_by(0.0, 1.0, false).is_finite());
    }
}
