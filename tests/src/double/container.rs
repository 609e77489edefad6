//! Container commands: `run`, `create`, `start`, `exec`,
//! `stop`, `kill`, `delete`, `logs`, with Apple's outputs, refusals and exit
//! codes. A container is a Docker container (the workload, joined to its
//! namespace holder: see `netns`) plus the Apple configuration the double
//! recorded when it was made.

use super::args::{flag, parse, value};
use super::engine::{api, api_message, container_json, docker, CONTAINER_LABEL};
use super::inspect::{attachments, container_id, containers, require};
use super::netns;
use super::runspec;
use super::server;
use super::{Failure, Out, Version};
use std::process::Command;

/// `run` and `create`. Each step that fails takes back the ones before it:
/// a refused `run` leaves no container, holder, volume or file behind.
pub fn run_or_create(args: &[String], v: Version, start: bool) -> Out {
    let mut spec = runspec::parse_run(args, v, start)?;
    if !start || spec.detach {
        if let Some(done) = server::delegate() {
            return done;
        }
    }
    if container_json(&spec.id).is_some() {
        return Err(Failure::failed(if start {
            format!("container with id {} already exists", spec.id)
        } else {
            format!("exists: \"container already exists: {}\"", spec.id)
        }));
    }
    let prepared = spec.prepare()?;
    let made = make(&spec, &prepared);
    if made.is_err() {
        prepared.undo();
    }
    made?;
    if !start {
        println!("{}", spec.id);
        return Ok(0);
    }
    if let Err(e) = netns::start(&spec.id, &spec.networks) {
        remove_container(&spec.id);
        return Err(e);
    }
    if spec.detach {
        start_workload(&spec.id)?;
        println!("{}", spec.id);
        return Ok(0);
    }
    // Foreground: the workload's output streams and its exit code is the CLI's.
    let code = attach_start(&spec.id, spec.interactive)?;
    if spec.remove {
        netns::remove(&spec.id);
        runspec::forget(&spec.id);
    }
    Ok(code)
}

/// Creates the namespace holder and the workload and records the
/// container; on failure, removes what it created.
fn make(spec: &runspec::RunSpec, prepared: &runspec::Prepared) -> Result<(), Failure> {
    let holder = netns::create(spec)?;
    let body = spec.docker_body(&holder, prepared);
    let created = api(
        "POST",
        &format!("/containers/create?name={}", spec.id),
        Some(&body),
    )
    .and_then(|(status, resp)| {
        if status >= 300 {
            return Err(Failure::failed(format!(
                "internalError: \"failed to create container: {}\"",
                api_message(&resp)
            )));
        }
        runspec::save_record(&spec.id, &spec.configuration())?;
        if let Some(path) = &spec.cidfile {
            std::fs::write(path, &spec.id)
                .map_err(|e| Failure::failed(format!("writing the cidfile {path}: {e}")))?;
        }
        Ok(())
    });
    if created.is_err() {
        let _ = docker(&["rm", "-f", &spec.id]);
        netns::remove(&spec.id);
    }
    created
}

/// Removes a container the double made: workload, holder, record.
fn remove_container(id: &str) {
    let _ = docker(&["rm", "-f", id]);
    netns::remove(id);
    runspec::forget(id);
}

fn start_workload(id: &str) -> Result<(), Failure> {
    let (status, v) = api("POST", &format!("/containers/{id}/start"), None)?;
    if status >= 300 && status != 304 {
        return Err(Failure::failed(format!(
            "internalError: \"failed to start {id}: {}\"",
            api_message(&v)
        )));
    }
    Ok(())
}

fn attach_start(id: &str, interactive: bool) -> Result<i32, Failure> {
    let mut cmd = Command::new("docker");
    cmd.args(["start", "--attach"]);
    if interactive {
        cmd.arg("--interactive");
    } else {
        cmd.stdin(std::process::Stdio::null());
    }
    let status = cmd
        .arg(id)
        .status()
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(status.code().unwrap_or(1))
}

/// `start [-a] [-i] ID`: detached by default, printing the ID.
pub fn start(args: &[String]) -> Out {
    let p = parse(
        args,
        &[flag("attach", Some('a')), flag("interactive", Some('i'))],
        false,
    )?;
    let [id] = p.positionals.as_slice() else {
        return Err(Failure::usage("Missing expected argument '<container-id>'"));
    };
    let c = require(id)?;
    // Every bind source must still exist.
    for m in c["Mounts"].as_array().into_iter().flatten() {
        if m["Type"] == "bind" && !std::path::Path::new(m["Source"].as_str().unwrap_or("")).exists()
        {
            return Err(Failure::failed(format!(
                "path '{}' does not exist",
                m["Source"].as_str().unwrap_or("")
            )));
        }
    }
    netns::start(id, &attachments(id))?;
    if p.has("attach") {
        return attach_start(id, p.has("interactive"));
    }
    start_workload(id)?;
    println!("{id}");
    Ok(0)
}

/// `exec [-i] [-t] [-d] [-e K=V] [--env-file F] [-u U] [--uid N] [--gid N] [-w D] ID CMD…`.
pub fn exec(args: &[String]) -> Out {
    let opts = [
        flag("interactive", Some('i')),
        flag("tty", Some('t')),
        flag("detach", Some('d')),
        value("env", Some('e')),
        value("env-file", None),
        value("user", Some('u')),
        value("uid", None),
        value("gid", None),
        value("workdir", Some('w')),
        value("cwd", None),
    ];
    let p = parse(args, &opts, true)?;
    let Some((id, cmd)) = p.positionals.split_first() else {
        return Err(Failure::usage("Missing expected argument '<container-id>'"));
    };
    if cmd.is_empty() {
        return Err(Failure::failed("no command specified for exec"));
    }
    let c = container_json(id)
        .filter(|c| !c["Config"]["Labels"][CONTAINER_LABEL].is_null())
        .ok_or_else(|| Failure::failed(format!("get failed: container {id} not found")))?;
    if c["State"]["Running"] != true {
        return Err(Failure::failed(format!("container {id} is not running")));
    }
    let mut argv: Vec<String> = vec!["exec".into()];
    for (k, d) in [("interactive", "-i"), ("tty", "-t"), ("detach", "-d")] {
        if p.has(k) {
            argv.push(d.into());
        }
    }
    for f in p.all("env-file") {
        for e in runspec::env_file(&f)? {
            argv.extend(["-e".into(), e]);
        }
    }
    for e in p.all("env") {
        argv.extend(["-e".into(), e]);
    }
    match (p.one("user"), p.one("uid"), p.one("gid")) {
        (Some(u), _, _) => argv.extend(["-u".into(), u]),
        (None, Some(u), g) => argv.extend([
            "-u".into(),
            format!("{u}:{}", g.unwrap_or_else(|| "0".into())),
        ]),
        (None, None, Some(g)) => argv.extend(["-u".into(), format!("0:{g}")]),
        (None, None, None) => {}
    }
    if let Some(w) = p.one("workdir").or(p.one("cwd")) {
        argv.extend(["-w".into(), w]);
    }
    argv.push(id.clone());
    argv.extend(cmd.iter().cloned());
    let status = Command::new("docker")
        .args(&argv)
        .status()
        .map_err(|e| Failure::failed(e.to_string()))?;
    if p.has("detach") {
        println!("{id}");
    }
    // The workload's exit code becomes the CLI's.
    Ok(status.code().unwrap_or(1))
}

/// Apple's aggregate error: one `code: "message"` line per failure.
fn aggregate(errors: Vec<String>) -> Out {
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure::failed(errors.join("\n")))
    }
}

/// The IDs a `stop`/`kill`/`delete` names, or every container with `--all`.
fn targets(p: &super::args::Parsed, running_only: bool) -> Result<Vec<String>, Failure> {
    if p.has("all") {
        return Ok(containers(!running_only).iter().map(container_id).collect());
    }
    if p.positionals.is_empty() {
        return Err(Failure::failed(
            "no containers specified and --all not supplied",
        ));
    }
    Ok(p.positionals.clone())
}

/// `stop [-a] [-s SIG] [-t 5] ID…`: the signal, then SIGKILL after the time.
pub fn stop(args: &[String]) -> Out {
    let p = parse(
        args,
        &[
            flag("all", Some('a')),
            value("signal", Some('s')),
            value("time", Some('t')),
        ],
        false,
    )?;
    let ids = targets(&p, true)?;
    let signal = p.one("signal").unwrap_or_else(|| "TERM".into());
    let time: u64 = p
        .one("time")
        .map(|t| {
            t.parse()
                .map_err(|_| Failure::usage(format!("The value '{t}' is invalid for '-t <time>'")))
        })
        .transpose()?
        .unwrap_or(5);
    let mut errors = Vec::new();
    for id in ids {
        let Ok(c) = require(&id) else {
            errors.push(format!("notFound: \"container with ID {id} not found\""));
            continue;
        };
        if c["State"]["Running"] == true {
            let _ = docker(&["kill", "--signal", &signal, &id]);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(time);
            while std::time::Instant::now() < deadline
                && container_json(&id).is_some_and(|c| c["State"]["Running"] == true)
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if container_json(&id).is_some_and(|c| c["State"]["Running"] == true) {
                let _ = docker(&["kill", "--signal", "KILL", &id]);
            }
        }
        netns::stop(&id);
        println!("{id}");
    }
    aggregate(errors)
}

/// `kill [-a] [-s KILL] ID…`.
pub fn kill(args: &[String]) -> Out {
    let p = parse(
        args,
        &[flag("all", Some('a')), value("signal", Some('s'))],
        false,
    )?;
    let ids = targets(&p, true)?;
    let signal = p.one("signal").unwrap_or_else(|| "KILL".into());
    let mut errors = Vec::new();
    for id in ids {
        match require(&id) {
            Err(_) => errors.push(format!("notFound: \"container with ID {id} not found\"")),
            Ok(c) if c["State"]["Running"] != true => {
                errors.push(format!("invalidState: \"container {id} is not running\""))
            }
            Ok(_) => {
                let _ = docker(&["kill", "--signal", &signal, &id]);
                println!("{id}");
            }
        }
    }
    aggregate(errors)
}

/// `delete|rm [-a] [-f] ID…`.
pub fn delete(args: &[String]) -> Out {
    let p = parse(
        args,
        &[flag("all", Some('a')), flag("force", Some('f'))],
        false,
    )?;
    if let Some(done) = server::delegate() {
        return done;
    }
    let force = p.has("force");
    let ids: Vec<String> = if p.has("all") {
        containers(true)
            .iter()
            .filter(|c| force || c["State"]["Running"] != true)
            .map(container_id)
            .collect()
    } else {
        targets(&p, false)?
    };
    let mut errors = Vec::new();
    for id in ids {
        match require(&id) {
            Err(_) => errors.push(format!("notFound: \"container with ID {id} not found\"")),
            Ok(c) if c["State"]["Running"] == true && !force => errors.push(format!(
                "invalidState: \"container {id} is running and can not be deleted\""
            )),
            Ok(_) => {
                remove_container(&id);
                println!("{id}");
            }
        }
    }
    aggregate(errors)
}

/// `logs [-f] [-n N] ID` (the stdio log; `--boot` is the VM's, which no
/// Docker container has).
pub fn logs(args: &[String]) -> Out {
    let p = parse(
        args,
        &[
            flag("follow", Some('f')),
            value("n", Some('n')),
            flag("boot", None),
        ],
        false,
    )?;
    if p.has("boot") {
        return Err(Failure::failed(
            "test double: --boot shows the VM's boot log and is not emulated",
        ));
    }
    let [id] = p.positionals.as_slice() else {
        return Err(Failure::usage("Missing expected argument '<container-id>'"));
    };
    require(id)?;
    let mut argv = vec!["logs".to_string()];
    if p.has("follow") {
        argv.push("--follow".into());
    }
    if let Some(n) = p.one("n") {
        argv.extend(["--tail".into(), n]);
    }
    argv.push(id.clone());
    let status = Command::new("docker")
        .args(&argv)
        .status()
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(status.code().unwrap_or(1))
}
