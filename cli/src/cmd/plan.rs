//! `bottle plan NAME`: the launch plan, without touching the engine.

use crate::args::Backend;
use anyhow::{Context, Result};
use bottlebar_core::backend::{self, Engine};
use bottlebar_core::home::Home;
use bottlebar_core::launch::{self, BuildInputs, GvisorChoice};
use bottlebar_core::manifest::{self, BackendKind};
use bottlebar_core::ops;
use bottlebar_core::selftest;
use std::process::ExitCode;

pub fn run(
    home: &Home,
    name: &str,
    backend: Option<Backend>,
    engine_version: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let m = manifest::load(home, name)?;
    let kind = ops::choose_backend(backend.map(Into::into), m.backend);
    launch::check_support(&m, kind).map_err(anyhow::Error::msg)?;
    let version = match engine_version {
        Some(v) => Some(
            backend::apple::parse_semver(v)
                .with_context(|| format!("`{v}` is not a version like 1.2.2"))?,
        ),
        None => None,
    };
    // Planning never runs the engine; the program path is only printed.
    let program = backend::find_engine(kind)
        .map(|e| e.program_str())
        .unwrap_or_else(|_| default_program(kind).into());
    let inputs = BuildInputs::locate()?;
    let target = launch::Target {
        backend: kind,
        program: &program,
        version,
    };
    let mut spec = launch::describe(
        home,
        &home.id()?,
        &m,
        target,
        &inputs,
        launch::choose_dns(&m, kind),
    )?;
    let gvisor = launch::gvisor_choice(&m).map_err(anyhow::Error::msg)?;
    spec.gvisor = kind == BackendKind::Docker && gvisor == GvisorChoice::On;
    let plan = backend::plan(&spec);
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", plan.render());
    let engine = Engine {
        kind,
        program: program.into(),
    };
    let probe = engine.probe_argv(
        &spec.bottle,
        &spec.sidecar_image.tag,
        [0, 0, 0, 0].into(),
        "",
        spec.gvisor,
    );
    println!(
        "\nThen the isolation self-test [{}]: {}\n    (in the agent's network; the sidecar's address for {{sidecar_ip}})\n    ready only if every direct way out fails and the proxy answers",
        ops::SELF_TEST_STEP,
        selftest::shown(&probe).replace("0.0.0.0", "{sidecar_ip}"),
    );
    if kind == BackendKind::Docker && gvisor == GvisorChoice::Auto {
        println!("    The agent runs under gVisor (`--runtime runsc`) if Docker has it registered; `[isolation] gvisor` or {}=on|off decide.", launch::GVISOR_ENV);
    }
    Ok(ExitCode::SUCCESS)
}

fn default_program(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Docker => "docker",
        BackendKind::Apple => "container",
    }
}
