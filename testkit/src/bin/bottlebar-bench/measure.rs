//! The three measurements, each in rounds in which the paths take turns
//! (forwards, then backwards), so that a noisy moment on this machine lands
//! on every path alike instead of on whichever was measuring then:
//! sequential latency, throughput on several kept-alive connections, and
//! uploads. A path's connections are opened afresh for each of its turns,
//! before the turn is timed: kept from one turn to the next, they would
//! sit idle through the other paths' turns, and a proxy may close an idle
//! connection. Every loop is bounded in count and time.

use crate::{Args, Path};
use anyhow::{Context, Result};
use bottlebar_testkit::bench_inputs::upload_body;
use bottlebar_testkit::client::{FetchOptions, Session};
use bottlebar_testkit::procs::cpu_seconds;
use std::future::Future;
use std::time::{Duration, Instant};

/// The request every latency and throughput figure is made of.
fn small_response(args: &Args) -> String {
    format!("/bytes?n={}", args.size)
}

/// The order in which the paths take their turns in `round`: forwards in
/// even rounds, backwards in odd ones, so that no path always follows the
/// same one.
pub fn turn_order(paths: usize, round: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..paths).collect();
    if round % 2 == 1 {
        order.reverse();
    }
    order
}

/// One kept-alive session to `path`'s upstream.
async fn open(path: &Path) -> Result<Session> {
    let opts = FetchOptions::default();
    path.client
        .session(&path.url, &opts)
        .await
        .with_context(|| format!("{}: connecting", path.name))?
        .map_err(|refused| {
            anyhow::anyhow!(
                "{}: refused: {} {}",
                path.name,
                refused.status,
                refused.body
            )
        })
}

/// The `p` quantile of `sorted`, in µs.
pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Sequential request latencies of every path, measured in rounds over one
/// kept-alive connection per path (after a warm-up), each list sorted;
/// with each path's sequential requests per second.
pub async fn latencies(paths: &[Path], args: &Args) -> Result<Vec<(Vec<Duration>, f64)>> {
    let target = small_response(args);
    let opts = FetchOptions::default();
    let mut sessions = Vec::new();
    for p in paths {
        let mut session = open(p).await?;
        for _ in 0..args.warmup {
            let r = session.request(&target, &opts).await?;
            anyhow::ensure!(
                r.status == 200 && r.body.len() == args.size,
                "{}: unexpected response {} ({} bytes)",
                p.name,
                r.status,
                r.body.len()
            );
        }
        sessions.push(session);
    }
    let rounds = usize::from(args.rounds);
    let per_round = args.requests.div_ceil(rounds);
    let mut samples = vec![Vec::with_capacity(args.requests); paths.len()];
    let mut busy = vec![Duration::ZERO; paths.len()];
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0..rounds {
        for i in turn_order(paths.len(), round) {
            let started = Instant::now();
            for _ in 0..per_round {
                let t = Instant::now();
                let r = sessions[i].request(&target, &opts).await?;
                samples[i].push(t.elapsed());
                anyhow::ensure!(r.status == 200, "{}: status {}", paths[i].name, r.status);
            }
            busy[i] += started.elapsed();
        }
        if Instant::now() > deadline {
            break;
        }
    }
    Ok(samples
        .into_iter()
        .zip(busy)
        .map(|(mut s, busy)| {
            let rps = s.len() as f64 / busy.as_secs_f64();
            s.sort();
            (s, rps)
        })
        .collect())
}

/// CPU time a request (an upload) took, µs.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    /// In the bench's process: the client and the upstream.
    pub bench: f64,
    /// In the proxy's process (0 for direct).
    pub proxy: f64,
}

/// A path's figure over its turns: requests a second on several
/// connections, or MB/s of uploads.
#[derive(Default)]
pub struct Figure {
    /// Over all its turns (0 when not measured).
    pub total: f64,
    /// In each of its turns, in order.
    pub by_round: Vec<f64>,
    /// The CPU a request (an upload) took over all its turns.
    pub cpu: Cpu,
}

/// A path's turns so far, each request counting `unit` (1 a request, or
/// an upload's MB).
#[derive(Clone)]
struct Turns {
    unit: f64,
    requests: u64,
    seconds: f64,
    /// CPU seconds in the bench's process and in the proxy's.
    bench_cpu: f64,
    proxy_cpu: f64,
    by_round: Vec<f64>,
}

/// CPU seconds used so far by the bench's process and by `path`'s proxy
/// (0 for direct).
fn cpu_now(path: &Path) -> (f64, f64) {
    let proxy = path.pid.map_or(0.0, cpu_seconds);
    (cpu_seconds(std::process::id()), proxy)
}

impl Turns {
    fn counting(unit: f64) -> Self {
        Turns {
            unit,
            requests: 0,
            seconds: 0.0,
            bench_cpu: 0.0,
            proxy_cpu: 0.0,
            by_round: Vec::new(),
        }
    }

    /// Times `work`, one of `path`'s turns, which says how many requests
    /// it made; its connections are opened before, untimed.
    async fn time(&mut self, path: &Path, work: impl Future<Output = Result<u64>>) -> Result<()> {
        let before = cpu_now(path);
        let started = Instant::now();
        let requests = work.await?;
        let seconds = started.elapsed().as_secs_f64();
        let after = cpu_now(path);
        self.requests += requests;
        self.seconds += seconds;
        self.bench_cpu += after.0 - before.0;
        self.proxy_cpu += after.1 - before.1;
        self.by_round.push(requests as f64 * self.unit / seconds);
        Ok(())
    }

    /// The figure over every turn.
    fn figure(self) -> Figure {
        let per_request = |cpu: f64| cpu * 1e6 / self.requests.max(1) as f64;
        Figure {
            total: self.requests as f64 * self.unit / self.seconds,
            cpu: Cpu {
                bench: per_request(self.bench_cpu),
                proxy: per_request(self.proxy_cpu),
            },
            by_round: self.by_round,
        }
    }
}

/// Every path's throughput on `args.connections` kept-alive connections:
/// `args.seconds` each, split into `args.throughput_rounds` turns.
pub async fn throughput(paths: &[Path], args: &Args) -> Result<Vec<Figure>> {
    let target = small_response(args);
    let rounds = usize::from(args.throughput_rounds);
    let turn = Duration::from_secs_f64(args.seconds as f64 / rounds as f64);
    let mut turns = vec![Turns::counting(1.0); paths.len()];
    for round in 0..rounds {
        for i in turn_order(paths.len(), round) {
            let mut sessions = Vec::new();
            for _ in 0..args.connections {
                sessions.push(open(&paths[i]).await?);
            }
            let work = requests_for(sessions, &target, turn);
            turns[i].time(&paths[i], work).await?;
        }
    }
    Ok(turns.into_iter().map(Turns::figure).collect())
}

/// Requests made for `turn` on every one of `sessions` at once, each on
/// its own task.
async fn requests_for(sessions: Vec<Session>, target: &str, turn: Duration) -> Result<u64> {
    let stop = Instant::now() + turn;
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            let target = target.to_string();
            tokio::spawn(async move {
                let opts = FetchOptions::default();
                let mut n = 0u64;
                while Instant::now() < stop {
                    s.request(&target, &opts).await?;
                    n += 1;
                }
                Ok::<_, anyhow::Error>(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total)
}

/// Every path's `args.uploads` uploads of a body of `args.upload_kib` (each
/// answered with its length checked), on one kept-alive connection a path,
/// split into `args.throughput_rounds` turns: MB/s. A path still uploading
/// after a minute in all stops there.
pub async fn uploads(paths: &[Path], args: &Args) -> Result<Vec<Figure>> {
    if args.uploads == 0 {
        return Ok(paths.iter().map(|_| Figure::default()).collect());
    }
    let body = upload_body(args.upload_body, args.upload_kib);
    let opts = FetchOptions {
        method: Some("POST".into()),
        body: Some(body.clone()),
        ..FetchOptions::default()
    };
    let rounds = usize::from(args.throughput_rounds);
    let per_round = args.uploads.div_ceil(rounds);
    let mut turns = vec![Turns::counting(body.len() as f64 / 1e6); paths.len()];
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0..rounds {
        for i in turn_order(paths.len(), round) {
            let path = &paths[i];
            let mut session = open(path).await?;
            let work = async {
                let mut uploaded = 0;
                for _ in 0..per_round {
                    let r = session.request("/sink", &opts).await?;
                    let got: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                    anyhow::ensure!(
                        r.status == 200 && got["bytes"] == body.len(),
                        "{}: upload answered {} {}",
                        path.name,
                        r.status,
                        r.body
                    );
                    uploaded += 1;
                    if Instant::now() > deadline {
                        break;
                    }
                }
                Ok(uploaded)
            };
            turns[i].time(path, work).await?;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    Ok(turns.into_iter().map(Turns::figure).collect())
}

/// `path`'s figure over direct's (the first) in each round they both had,
/// sorted: their spread says how steady the machine was.
pub fn ratios_by_round(path: &[f64], direct: &[f64]) -> Vec<f64> {
    let mut r: Vec<f64> = path.iter().zip(direct).map(|(p, d)| p / d).collect();
    r.sort_by(f64::total_cmp);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_takes_every_turn_and_the_order_alternates() {
        assert_eq!(turn_order(3, 0), [0, 1, 2]);
        assert_eq!(turn_order(3, 1), [2, 1, 0]);
        assert_eq!(turn_order(3, 2), [0, 1, 2]);
        assert!(turn_order(0, 1).is_empty());
    }

    #[test]
    fn ratios_by_round_pair_each_round_with_direct_s_own() {
        let r = ratios_by_round(&[40.0, 30.0, 45.0], &[100.0, 100.0, 90.0]);
        assert_eq!(r, [0.3, 0.4, 0.5]);
        // A path with fewer rounds (stopped at the deadline) pairs only those.
        assert_eq!(ratios_by_round(&[50.0], &[100.0, 100.0]), [0.5]);
    }
}
