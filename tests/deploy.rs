//! The compose stack, checked without Docker (images cannot be fetched in
//! CI): every file parses, every file it mounts or copies exists, services
//! reach each other by name, and the Prometheus and Alertmanager configs pass
//! promtool / amtool in the layout the containers see.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn deploy() -> PathBuf {
    common::repo().join("deploy")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compose() -> Value {
    yaml(&deploy().join("compose.yaml"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn compose_has_the_stack_and_its_mounts_exist() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    for s in ["target", "load", "prometheus", "alertmanager", "grafana"] {
        assert!(services.contains_key(s), "service {s} missing");
    }
    for (name, svc) in services {
        for v in svc["volumes"].as_array().into_iter().flatten() {
            let spec = v.as_str().expect("short volume syntax");
            let host = spec.split(':').next().expect("host path");
            let path = deploy().join(host);
            assert!(
                path.exists(),
                "{name} mounts {host}, which does not exist ({})",
                path.display()
            );
        }
    }
    let build = &c["services"]["target"]["build"];
    let context = deploy().join(build["context"].as_str().expect("context"));
    assert!(
        context
            .join(build["dockerfile"].as_str().expect("dockerfile"))
            .is_file()
    );
    assert_eq!(
        std::fs::canonicalize(&context).expect("context"),
        std::fs::canonicalize(common::repo()).expect("repo")
    );
}

#[test]
fn target_listens_on_all_interfaces_with_a_token_and_load_uses_the_service_name() {
    let c = compose();
    let target = &c["services"]["target"];
    let cmd = strings(&target["command"]);
    assert_eq!(cmd[0], "target");
    assert!(cmd.iter().any(|a| a.starts_with("0.0.0.0:")), "{cmd:?}");
    assert!(
        target["environment"]["SLOCHECK_ADMIN_TOKEN"].is_string(),
        "{target}"
    );

    let load = &c["services"]["load"];
    let cmd = strings(&load["command"]);
    assert_eq!(&cmd[..3], ["load", "scenarios/demo.toml", "--loop"]);
    let i = cmd
        .iter()
        .position(|a| a == "--target-url")
        .expect("--target-url");
    assert_eq!(cmd[i + 1], "http://target:8000");
    assert!(common::repo().join(&cmd[1]).is_file());
    assert_eq!(
        load["environment"]["SLOCHECK_ADMIN_TOKEN"],
        target["environment"]["SLOCHECK_ADMIN_TOKEN"]
    );

    // The command line the load container runs is one slocheck accepts.
    let sb = common::Sandbox::new();
    let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    args.push("--help");
    let o = sb.run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", common::dump(&o));
    assert!(common::stdout(&o).contains("--admin-token"));
}

#[test]
fn grafana_gets_the_provisioning_variables() {
    let c = compose();
    let env = &c["services"]["grafana"]["environment"];
    assert_eq!(env["PROMETHEUS_URL"], "http://prometheus:9090");
    let dashboards = env["SLOCHECK_DASHBOARDS"]
        .as_str()
        .expect("SLOCHECK_DASHBOARDS");
    let vols = strings(&c["services"]["grafana"]["volumes"]);
    assert!(
        vols.iter()
            .any(|v| v.starts_with("../dashboards:") && v.contains(dashboards)),
        "{vols:?}"
    );
    assert!(
        vols.iter()
            .any(|v| v.starts_with("../dashboards/provisioning:/etc/grafana/provisioning")),
        "{vols:?}"
    );
}

#[test]
fn prometheus_config_scrapes_service_names_and_passes_promtool() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    let text = std::fs::read_to_string(deploy().join("prometheus.yml")).expect("read");
    let config_lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        !config_lines
            .iter()
            .any(|l| l.contains("host.docker.internal")),
        "{text}"
    );
    let cfg = yaml(&deploy().join("prometheus.yml"));
    for job in cfg["scrape_configs"].as_array().expect("scrape_configs") {
        for t in strings(&job["static_configs"][0]["targets"]) {
            let host = t.split(':').next().expect("host");
            // Prometheus scraping itself is the only localhost target.
            if job["job_name"] == "prometheus" {
                assert_eq!(host, "localhost");
            } else {
                assert!(services.contains_key(host), "{t} is not a compose service");
            }
        }
    }
    for t in strings(&cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]) {
        assert!(
            services.contains_key(t.split(':').next().expect("host")),
            "{t}"
        );
    }

    // The container layout: /etc/prometheus/{prometheus.yml, rules/}.
    let layout = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        deploy().join("prometheus.yml"),
        layout.path().join("prometheus.yml"),
    )
    .expect("copy");
    let rules = layout.path().join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    for f in strings(&cfg["rule_files"]) {
        let name = f.strip_prefix("rules/").expect("rules/ relative path");
        std::fs::copy(common::repo().join("rules").join(name), rules.join(name))
            .expect("copy rule file");
    }
    let o = Command::new("promtool")
        .args(["check", "config"])
        .arg(layout.path().join("prometheus.yml"))
        .output()
        .expect("promtool on PATH");
    assert!(o.status.success(), "{}", common::dump(&o));
    // promtool only reports "N rules found" when it read the rule files.
    assert!(
        common::stdout(&o).contains("rules found"),
        "{}",
        common::dump(&o)
    );
}

#[test]
fn alertmanager_config_passes_amtool() {
    let o = Command::new("amtool")
        .args(["check-config"])
        .arg(deploy().join("alertmanager.yml"))
        .output()
        .expect("amtool on PATH");
    assert!(o.status.success(), "{}", common::dump(&o));
}

#[test]
fn dockerfile_copies_files_that_exist() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).expect("read");
    let mut copied = 0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(
                common::repo().join(src).exists(),
                "Dockerfile copies missing {src}"
            );
            copied += 1;
        }
    }
    assert!(copied >= 4, "{text}");
    assert!(text.contains("ENTRYPOINT [\"slocheck\"]"));
}

/// The builder image's Rust must build every locked dependency (their
/// `rust-version`), or `docker compose up --build` fails on a user's machine.
#[test]
fn dockerfile_rust_is_new_enough_for_the_dependencies() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).expect("read");
    let image = text
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .expect("a rust builder stage");
    let version = parse_version(image.split('-').next().expect("tag")).expect("pinned X.Y tag");
    let o = Command::new(env!("CARGO"))
        // Only this platform's packages: a Linux build never downloads
        // e.g. Android-only crates, which an offline metadata call would miss.
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", &host_triple()])
        .current_dir(common::repo())
        .output()
        .expect("cargo metadata");
    assert!(o.status.success(), "{}", common::dump(&o));
    let meta: Value = serde_json::from_slice(&o.stdout).expect("metadata JSON");
    let (need, who) = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| {
            Some((
                parse_version(p["rust_version"].as_str()?)?,
                p["name"].as_str()?.to_string(),
            ))
        })
        .max()
        .expect("some rust-version");
    assert!(
        version >= need,
        "the Dockerfile builds with rust {version:?}, but {who} needs {need:?}"
    );
}

fn host_triple() -> String {
    let o = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Files the crate embeds at compile time (`include_str!`) must be copied
/// into the build stage, or the image build fails.
#[test]
fn dockerfile_build_stage_has_the_embedded_files() {
    let text = std::fs::read_to_string(deploy().join("Dockerfile")).expect("read");
    let build_stage: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("FROM "))
        .skip(1)
        .take_while(|l| !l.starts_with("FROM "))
        .collect();
    let copied: Vec<PathBuf> = build_stage
        .iter()
        .filter(|l| l.starts_with("COPY "))
        .flat_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w[1..w.len() - 1]
                .iter()
                .map(|s| common::repo().join(s))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut embedded = Vec::new();
    let mut stack = vec![common::repo().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)
            .expect("read src")
            .filter_map(Result::ok)
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(code) = std::fs::read_to_string(&p) else {
                continue;
            };
            let after = |m: &'static str| {
                code.split(m)
                    .skip(1)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            for part in after("include_str!(\"")
                .iter()
                .chain(&after("include_bytes!(\""))
            {
                let rel = part.split('"').next().expect("path");
                let file = std::fs::canonicalize(p.parent().expect("dir").join(rel))
                    .unwrap_or_else(|e| panic!("{rel} from {}: {e}", p.display()));
                embedded.push(file);
            }
        }
    }
    assert!(
        !embedded.is_empty(),
        "the model's data is embedded; the scan found nothing"
    );
    for f in embedded {
        assert!(
            copied
                .iter()
                .any(|c| std::fs::canonicalize(c).is_ok_and(|c| f.starts_with(c))),
            "{} is embedded but not copied into the build stage",
            f.display()
        );
    }
}
