//! Golden tests: the exact argv of every launch step, per backend.
//! Regenerate after an intended change with `BOTTLEBAR_BLESS=1 cargo test -p bottlebar-core --test plan_golden`
//! and review the diff.

use bottlebar_core::launch::example_spec;
use bottlebar_core::manifest::BackendKind;
use std::path::Path;

fn check(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("BOTTLEBAR_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with BOTTLEBAR_BLESS=1)", path.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n  golden: {:?}\n  actual: {:?}",
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

#[test]
fn docker_plan_matches_golden() {
    let plan = bottlebar_core::backend::plan(&example_spec(BackendKind::Docker, "docker"));
    plan.check().unwrap();
    check(
        "docker-plan.json",
        &(serde_json::to_string_pretty(&plan).unwrap() + "\n"),
    );
    check("docker-plan.txt", &plan.render());
}

#[test]
fn apple_plan_matches_golden() {
    let plan = bottlebar_core::backend::plan(&example_spec(BackendKind::Apple, "container"));
    plan.check().unwrap();
    check(
        "apple-plan.json",
        &(serde_json::to_string_pretty(&plan).unwrap() + "\n"),
    );
    check("apple-plan.txt", &plan.render());
}

#[test]
fn apple_plan_before_1_2_1_recreates_the_builder_with_the_dns() {
    let mut spec = example_spec(BackendKind::Apple, "container");
    spec.engine_version = Some((1, 2, 0));
    let plan = bottlebar_core::backend::plan(&spec);
    plan.check().unwrap();
    check("apple-1.2.0-plan.txt", &plan.render());
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        &ids[..3],
        ["stop-builder", "delete-builder", "start-builder"]
    );
    assert_eq!(
        plan.step("start-builder").unwrap().argv,
        ["container", "builder", "start", "--dns", "192.0.2.53"]
    );
    // The builds wait for the builder and do not pass --dns (it would be ignored).
    let build = plan.step("build-agent-image").unwrap();
    assert_eq!(build.after, ["start-builder"]);
    assert!(!build.argv.contains(&"--dns".to_string()));
    // From 1.2.1, `build --dns` does the job.
    spec.engine_version = Some((1, 2, 1));
    let plan = bottlebar_core::backend::plan(&spec);
    assert!(plan.step("start-builder").is_none());
    assert!(plan
        .step("build-agent-image")
        .unwrap()
        .argv
        .windows(2)
        .any(|w| w == ["--dns", "192.0.2.53"]));
}

#[test]
fn the_image_plan_is_the_launch_plans_builds_and_what_they_wait_for() {
    let ids =
        |p: &bottlebar_core::plan::Plan| p.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    for (kind, engine, version, expected) in [
        (
            BackendKind::Docker,
            "docker",
            None,
            &["build-sidecar-image", "build-agent-image"][..],
        ),
        (
            BackendKind::Apple,
            "container",
            Some((1, 2, 1)),
            &["build-sidecar-image", "build-agent-image"][..],
        ),
        // Before 1.2.1 the builds wait for the builder made again with the DNS.
        (
            BackendKind::Apple,
            "container",
            Some((1, 2, 0)),
            &[
                "stop-builder",
                "delete-builder",
                "start-builder",
                "build-sidecar-image",
                "build-agent-image",
            ][..],
        ),
    ] {
        let mut spec = example_spec(kind, engine);
        spec.engine_version = version;
        let launch = bottlebar_core::backend::plan(&spec);
        let builds = bottlebar_core::backend::image_plan(&spec);
        builds.check().unwrap();
        assert_eq!(ids(&builds), expected, "{kind} {version:?}");
        // The very steps of the launch: same argv, same skip probe.
        for step in &builds.steps {
            assert_eq!(Some(step), launch.step(&step.id), "{kind}: {}", step.id);
            assert!(step.undo.is_none(), "a build creates nothing to undo");
        }
    }
}

#[test]
fn plans_never_leak_secret_paths_into_the_agent() {
    for (kind, engine) in [
        (BackendKind::Docker, "docker"),
        (BackendKind::Apple, "container"),
    ] {
        let spec = example_spec(kind, engine);
        let plan = bottlebar_core::backend::plan(&spec);
        let agent = plan.step("run-agent").unwrap();
        let joined = agent.argv.join(" ");
        // The agent gets the CA certificate directory, never the sidecar's state (key, rules).
        assert!(
            !joined.contains(&spec.state.sidecar.display().to_string()),
            "{kind}: {joined}"
        );
        assert!(joined.contains(&spec.state.agent_ca.display().to_string()));
        assert!(!joined.contains("ca.key"));
        // Single files are mounted through their staging directory, never directly.
        assert!(!joined.contains(".gitconfig"), "{kind}: {joined}");
        // Internal network only.
        assert_eq!(agent.argv.iter().filter(|a| *a == "--network").count(), 1);
        assert_eq!(&agent.argv[agent.argv.len() - 2..], ["sleep", "2147483647"]);
    }
}

#[test]
fn apple_sidecar_gets_egress_network_first() {
    let plan = bottlebar_core::backend::plan(&example_spec(BackendKind::Apple, "container"));
    let run = &plan.step("run-sidecar").unwrap().argv;
    let nets: Vec<&String> = run
        .iter()
        .enumerate()
        .filter(|(i, _)| *i > 0 && run[i - 1] == "--network")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(nets, ["bottlebar-demo-egress", "bottlebar-demo-internal"]);
}

#[test]
fn docker_sidecar_is_created_on_egress_then_connected_to_internal() {
    let plan = bottlebar_core::backend::plan(&example_spec(BackendKind::Docker, "docker"));
    let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
    let pos = |id| ids.iter().position(|x| *x == id).unwrap();
    assert!(pos("create-sidecar") < pos("connect-sidecar-internal"));
    assert!(pos("connect-sidecar-internal") < pos("start-sidecar"));
    let create = &plan.step("create-sidecar").unwrap().argv;
    let i = create.iter().position(|a| a == "--network").unwrap();
    assert_eq!(create[i + 1], "bottlebar-demo-egress");
}

#[test]
fn a_rebuild_builds_the_agent_afresh_on_both_backends_and_streams_it() {
    for (kind, program) in [
        (BackendKind::Docker, "docker"),
        (BackendKind::Apple, "container"),
    ] {
        let mut spec = example_spec(kind, program);
        let plan = bottlebar_core::backend::plan(&spec);
        let step = |plan: &bottlebar_core::plan::Plan, id: &str| {
            plan.steps.iter().find(|s| s.id == id).unwrap().clone()
        };
        let agent = step(&plan, "build-agent-image");
        assert!(agent.skip_if.is_some() && agent.streams_output, "{program}");
        assert!(!agent.argv.contains(&"--no-cache".to_string()), "{program}");
        spec.rebuild_agent = true;
        let plan = bottlebar_core::backend::plan(&spec);
        let agent = step(&plan, "build-agent-image");
        assert!(
            agent.skip_if.is_none(),
            "{program}: a rebuild is never skipped"
        );
        assert!(agent.argv.contains(&"--no-cache".to_string()), "{program}");
        let sidecar = step(&plan, "build-sidecar-image");
        assert!(sidecar.skip_if.is_some() && !sidecar.argv.contains(&"--no-cache".to_string()));
    }
}
