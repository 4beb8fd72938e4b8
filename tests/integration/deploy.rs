//! The shipped Kubernetes manifests and Dockerfile, checked where a mistake would cost a night: the
//! Indexed Job and the `--shard auto/N` argument agree, nights never overlap, every secret and config
//! key the pods read exists, the receiver's replicas share their outbox in PostgreSQL, its probes and
//! Service point at its port, nothing runs as root.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn manifests(file: &str) -> Vec<Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn strings(yaml: &Yaml) -> Vec<&str> {
    yaml.as_vec()
        .map(|v| v.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

/// Every `${NAME}`-style environment variable a TOML text reads with `{ env = "NAME" }`.
fn env_references(toml: &str) -> Vec<String> {
    toml.split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_night_is_an_indexed_job_whose_shards_match_its_completions() {
    let docs = manifests("cronjob.yaml");
    let cron = of_kind(&docs, "CronJob");
    assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"].as_str(), Some("Indexed"));
    let completions = job["completions"].as_i64().unwrap();
    assert_eq!(job["parallelism"].as_i64(), Some(completions));
    assert!(job["backoffLimitPerIndex"].as_i64().is_some());
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    let shard = args
        .iter()
        .position(|a| *a == "--shard")
        .map(|i| args[i + 1])
        .unwrap();
    assert_eq!(shard, format!("auto/{completions}"), "{args:?}");
    assert!(args.contains(&"--all-stores"));
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    let volumes: Vec<&str> = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(
        mounts.iter().all(|m| volumes.contains(m)),
        "{mounts:?} {volumes:?}"
    );
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert!(
        mounts.contains(&"tmp"),
        "a read-only root needs a writable /tmp"
    );
}

#[test]
fn every_secret_the_config_reads_is_in_the_secret_and_the_config_parses() {
    let config = manifests("configmap.yaml");
    let toml = config[0]["data"]["rrfeed.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rrfeed.toml");
    std::fs::write(&path, toml).unwrap();
    let parsed = rrfeed::config::file::load(&path).unwrap();
    assert!(parsed.stores.len() >= 2);
    let secrets = manifests("secret.example.yaml");
    let env_secret = secrets
        .iter()
        .find(|d| d["metadata"]["name"].as_str() == Some("rrfeed-secrets"))
        .unwrap();
    let keys = env_secret["stringData"].as_hash().unwrap();
    let has = |name: &str| keys.contains_key(&Yaml::String(name.to_owned()));
    for name in env_references(toml) {
        assert!(
            has(&name),
            "the config reads {name}, which the Secret lacks"
        );
    }
    assert!(
        has("RRFEED_STATE_URL"),
        "the fleet shares its state in PostgreSQL"
    );
    // Key files: each `{ file = "/etc/rrfeed/keys/NAME" }` is an entry of the key Secret.
    let key_secret = secrets
        .iter()
        .find(|d| d["metadata"]["name"].as_str() == Some("rrfeed-store-keys"))
        .unwrap();
    for name in toml
        .split("file = \"/etc/rrfeed/keys/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
    {
        assert!(
            key_secret["stringData"][name].as_str().is_some(),
            "no key file {name}"
        );
    }
}

#[test]
fn the_receivers_probes_and_service_reach_its_port() {
    let docs = manifests("webhook.yaml");
    let deployment = of_kind(&docs, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    // Replicas share one outbox only in PostgreSQL: they must read its URL from the Secret.
    if deployment["spec"]["replicas"].as_i64().unwrap_or(1) > 1 {
        let secrets: Vec<&str> = container["envFrom"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(|e| e["secretRef"]["name"].as_str())
            .collect();
        assert_eq!(
            secrets,
            ["rrfeed-secrets"],
            "the replicas need RRFEED_STATE_URL"
        );
    }
    let args = strings(&container["args"]);
    let listen = args
        .iter()
        .position(|a| *a == "--listen")
        .map(|i| args[i + 1])
        .unwrap();
    let port: i64 = listen.rsplit(':').next().unwrap().parse().unwrap();
    let http = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str() == Some("http"))
        .unwrap();
    assert_eq!(http["containerPort"].as_i64(), Some(port));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["path"].as_str(),
            Some("/healthz")
        );
        assert_eq!(container[probe]["httpGet"]["port"].as_str(), Some("http"));
    }
    let service = of_kind(&docs, "Service");
    let selector = service["spec"]["selector"].as_hash().unwrap();
    let labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_hash()
        .unwrap();
    assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_str(),
        Some("http")
    );
}

#[test]
fn the_image_is_built_in_stages_and_runs_as_a_user() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")) >= 2);
    let user = text
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(text.contains("--locked"));
}
