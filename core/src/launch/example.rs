//! A launch spec with fixed, fake paths and hashes, for the golden plan
//! tests and tools.

use super::LaunchSpec;
use crate::images::ImageSpec;
use crate::manifest::{BackendKind, Mount, Resources};
use crate::name::BottleName;
use crate::state::{self, StagedDir, StateDirs};
use bottlebar_policy::EgressRule;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Helper for tests and tools: a spec with fixed, fake paths and hashes.
pub fn example_spec(backend: BackendKind, engine: &str) -> LaunchSpec {
    use crate::images::{ImageSource, PreparedFile};
    use crate::name::Role;
    let bottle = BottleName::parse("demo").unwrap();
    let state = StateDirs::new(PathBuf::from("/home/user/.bottlebar/state/demo"));
    let image = |role: Role, hash: &str| ImageSpec {
        role,
        tag: format!("{}:{}", bottle.image_repo(role), &hash[..16]),
        content_hash: hash.to_string(),
        dockerfile: state.build.join(role.as_str()).join("Dockerfile"),
        context: state.build.join(role.as_str()),
        source: ImageSource::Prepared {
            dockerfile_text: String::new(),
            files: Vec::<PreparedFile>::new(),
        },
        build_args: Vec::new(),
    };
    LaunchSpec {
        sidecar_image: image(
            Role::Sidecar,
            "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e",
        ),
        agent_image: image(
            Role::Agent,
            "a9e47a9e47a9e47a9e47a9e47a9e47a9e47a9e47a9e47a9e47a9e47a9e47a9e4",
        ),
        dir_mounts: vec![Mount {
            host: PathBuf::from("/home/user/src/project"),
            container: "/workspace".into(),
            readonly: false,
            is_file: false,
        }],
        staged: vec![StagedDir {
            host_dir: state.files.join("0"),
            container_dir: "/root".into(),
            readonly: true,
            files: vec![(PathBuf::from("/home/user/.gitconfig"), ".gitconfig".into())],
        }],
        env: BTreeMap::from([("EDITOR".to_string(), "vi".to_string())]),
        egress: vec![EgressRule {
            host: "example.com".into(),
            ports: vec![],
            methods: vec![],
            paths: vec![],
            inject: None,
            dlp: Default::default(),
        }],
        secrets: vec![crate::manifest::SecretSpec {
            name: "api".into(),
            source: crate::manifest::SecretSource::Env("EXAMPLE_API_KEY".into()),
            placeholder_env: Some("EXAMPLE_API_KEY".into()),
        }],
        extra_roots: vec![],
        supervise: Some(Default::default()),
        resources: Resources {
            cpus: Some(2),
            memory_mib: Some(2048),
        },
        dns: vec!["192.0.2.53".into()],
        engine_version: None,
        hosts: BTreeMap::from([("internal.example.com".to_string(), "192.0.2.10".to_string())]),
        allow_private_ranges: vec![],
        gvisor: false,
        rebuild_agent: false,
        sidecar_user: (
            state::SIDECAR_UNPRIVILEGED_ID,
            state::SIDECAR_UNPRIVILEGED_ID,
        ),
        subnets: (backend == BackendKind::Docker)
            .then(|| ("10.213.4.16/28".to_string(), "10.213.9.32/28".to_string())),
        bottle,
        home_id: "0123456789abcdef".into(),
        backend,
        engine: engine.into(),
        state,
    }
}
