//! The container's init process: the image's entrypoint, command, env,
//! workdir and user, overridden by the flags as Apple's
//! `containerConfigFromFlags` does.

use super::super::args::Parsed;
use super::super::engine::docker;
use super::super::system::normalize_reference;
use super::super::Failure;
use super::values::{env_file, inherit};
use serde_json::{json, Value};

/// The init process a `run`/`create` asked for.
pub struct Process {
    pub executable: String,
    pub arguments: Vec<String>,
    /// Image env, then env files, then `-e`; the last key wins.
    pub env: Vec<String>,
    /// `uid:gid` or a name, for Docker.
    pub user: String,
    /// Apple's `user` element: `{id: {uid, gid}}` or `{raw: {userString}}`.
    pub user_shown: Value,
    pub workdir: String,
    pub stop_signal: String,
}

impl Process {
    pub fn from_flags(p: &Parsed, image: &str, cmd: &[String]) -> Result<Self, Failure> {
        let img = ImageProcess::read(image)?;
        let env = merge_env(img.env, p)?;
        let (entry, args): (Vec<String>, Vec<String>) = match p.one("entrypoint") {
            // An --entrypoint without arguments drops the image's CMD.
            Some(e) => (vec![e], cmd.to_vec()),
            None if cmd.is_empty() => (img.entrypoint, img.cmd),
            None => (img.entrypoint, cmd.to_vec()),
        };
        let mut argv = entry.into_iter().chain(args);
        let executable = argv
            .next()
            .ok_or_else(|| Failure::failed("no command specified and the image has none"))?;
        let user = match (p.one("user"), p.one("uid"), p.one("gid")) {
            (Some(u), _, _) => u,
            (None, Some(u), g) => format!("{u}:{}", g.unwrap_or_else(|| "0".into())),
            (None, None, Some(g)) => format!("0:{g}"),
            (None, None, None) if img.user.is_empty() => "0:0".into(),
            (None, None, None) => img.user,
        };
        let workdir = p
            .one("workdir")
            .or(p.one("cwd"))
            .unwrap_or(if img.workdir.is_empty() {
                "/".into()
            } else {
                img.workdir
            });
        Ok(Process {
            executable,
            arguments: argv.collect(),
            env,
            user_shown: user_element(&user),
            user,
            workdir,
            stop_signal: img.stop_signal,
        })
    }
}

/// Image env, then env files, then `-e` (a bare `-e K` inherits from the
/// host, or is skipped when unset); the last key wins.
fn merge_env(image_env: Vec<String>, p: &Parsed) -> Result<Vec<String>, Failure> {
    let mut env = image_env;
    for f in p.all("env-file") {
        env.extend(env_file(&f)?);
    }
    env.extend(p.all("env").iter().filter_map(|e| inherit(e)));
    let mut merged: Vec<String> = Vec::new();
    for e in env {
        let key = e.split('=').next().unwrap_or("").to_string();
        merged.retain(|x| x.split('=').next() != Some(key.as_str()));
        merged.push(e);
    }
    Ok(merged)
}

/// A numeric user is an id; a name stays as written (`raw`).
fn user_element(user: &str) -> Value {
    let (u, g) = user.split_once(':').unwrap_or((user, "0"));
    match (u.parse::<u64>(), g.parse::<u64>()) {
        (Ok(uid), Ok(gid)) => json!({ "id": { "gid": gid, "uid": uid } }),
        _ => json!({ "raw": { "userString": user } }),
    }
}

/// What an image says about its process.
struct ImageProcess {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    workdir: String,
    user: String,
    stop_signal: String,
}

impl ImageProcess {
    /// The image's config; a missing image is Apple's `notFound` (the
    /// double never pulls: images are built here).
    fn read(image: &str) -> Result<Self, Failure> {
        let text = docker(&["image", "inspect", image]).map_err(|_| {
            Failure::failed(format!(
                "notFound: \"image {} not found\"",
                normalize_reference(image)
            ))
        })?;
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        let c = &v[0]["Config"];
        let list = |k: &str| -> Vec<String> {
            c[k].as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        };
        let text = |k: &str| c[k].as_str().unwrap_or("").to_string();
        Ok(ImageProcess {
            entrypoint: list("Entrypoint"),
            cmd: list("Cmd"),
            env: list("Env"),
            workdir: text("WorkingDir"),
            user: text("User"),
            stop_signal: text("StopSignal"),
        })
    }
}
