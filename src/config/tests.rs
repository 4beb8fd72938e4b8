use super::*;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::io::Write;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn config_from(text: &str) -> (tempfile::NamedTempFile, Result<Config, ConfigError>) {
    let mut file = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let loaded = Config::load(Some(file.path()));
    (file, loaded)
}

#[test]
fn http_is_refused_except_for_loopback() {
    assert!(check_base_url("https://api.riderrewards.com").is_ok());
    assert!(check_base_url("http://127.0.0.1:8080").is_ok());
    assert!(check_base_url("http://localhost:1/api").is_ok());
    let err = check_base_url("http://api.riderrewards.com").unwrap_err();
    assert!(err.contains("not loopback"), "{err}");
    assert!(check_base_url("ftp://x").is_err());
    assert!(check_base_url("not a url").is_err());
}

#[test]
fn the_environment_alone_configures_a_store() {
    let env = env_of(&[
        ("RRFEED_PARTNER_API_KEY", "pk"),
        ("RRFEED_STORE_ID", "12"),
        ("RRFEED_STORE_API_KEY", "sk"),
    ]);
    let config = Config::default();
    let api = config
        .api(&env, &Overrides::default(), Duration::from_secs(60))
        .unwrap();
    assert_eq!(api.base_url.as_str(), "https://api.riderrewards.com/");
    assert_eq!(api.partner_key.expose_secret(), "pk");
    let store = config.default_store(&env).unwrap();
    assert_eq!(
        (store.store_id.as_str(), store.partner_store_id.as_str()),
        ("12", "12")
    );
}

#[test]
fn a_missing_key_names_the_variable_and_never_a_value() {
    let env = env_of(&[("RRFEED_STORE_ID", "12")]);
    let store = Config::default().default_store(&env).unwrap();
    let err = store.store_key.resolve(&env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RRFEED_STORE_API_KEY is not set: it must hold the store's RRStoreAPIKey"
    );
    let err = Config::default()
        .api(&env, &Overrides::default(), Duration::from_secs(1))
        .unwrap_err();
    assert!(err.to_string().starts_with("RRFEED_PARTNER_API_KEY"));
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let env = env_of(&[("RRFEED_PARTNER_API_KEY", "very-secret-key")]);
    let api = Config::default()
        .api(&env, &Overrides::default(), Duration::from_secs(1))
        .unwrap();
    assert!(!format!("{api:?}").contains("very-secret-key"));
}

#[test]
fn stores_read_their_keys_from_the_environment_or_a_file() {
    let mut key_file = tempfile::NamedTempFile::new().unwrap();
    writeln!(key_file, "file-key").unwrap();
    let text = format!(
        r#"
        [[store]]
        name = "north"
        store_id = "1"
        store_api_key = {{ env = "NORTH_KEY" }}
        export = "/exports/north.csv"
        encoding = "cp1252"
        delimiter = ";"

        [[store]]
        name = "south"
        store_id = "2"
        partner_store_id = "S2"
        store_api_key = {{ file = "{}" }}
        format = "XLSM"
        sheet = "Customers"
        "#,
        key_file.path().display()
    );
    let (_f, config) = config_from(&text);
    let stores: Vec<StoreSettings> = config
        .unwrap()
        .stores()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let env = env_of(&[("NORTH_KEY", "env-key")]);
    let key = |store: &StoreSettings| store.store_key.resolve(&env).unwrap();
    assert_eq!(key(&stores[0]).expose_secret(), "env-key");
    assert_eq!(stores[0].input.encoding, Some(Encoding::Windows1252));
    assert_eq!(stores[0].input.delimiter, Some(b';'));
    assert_eq!(key(&stores[1]).expose_secret(), "file-key");
    assert_eq!(stores[1].partner_store_id, "S2");
    assert_eq!(stores[1].input.format, Some(Format::Xlsx));
    assert_eq!(stores[1].input.sheet.as_deref(), Some("Customers"));
    assert_eq!(stores[0].input.sheet, None);
}

#[test]
fn a_missing_store_key_names_the_variable_the_store_and_the_file() {
    let (f, config) = config_from(
        "[[store]]\nname = \"north\"\nstore_id = \"1\"\nstore_api_key = { env = \"NORTH_KEY\" }\n",
    );
    let stores = config.unwrap().stores().unwrap();
    let store = stores[0].as_ref().unwrap();
    let err = store
        .store_key
        .resolve(&env_of(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("NORTH_KEY"), "{err}");
    assert!(err.contains("store \"north\""), "{err}");
    assert!(err.contains(&f.path().display().to_string()), "{err}");
}

#[test]
fn one_stores_wrong_setting_leaves_the_others_usable() {
    let (_f, config) = config_from(
        "[[store]]\nname = \"a\"\nstore_id = \"1\"\nstore_api_key = { env = \"K\" }\nencoding = \"ebcdic\"\n\
         [[store]]\nname = \"b\"\nstore_id = \"2\"\nstore_api_key = { env = \"K\" }\n",
    );
    let stores = config.unwrap().stores().unwrap();
    let problem = stores[0].as_ref().unwrap_err();
    assert_eq!(problem.name, "a");
    assert!(
        problem.error.to_string().contains("ebcdic"),
        "{:?}",
        problem.error
    );
    assert_eq!(stores[1].as_ref().unwrap().name, "b");
}

#[test]
fn a_bad_value_names_the_key_and_the_file() {
    let (f, config) = config_from("[guards]\nshrink_ratio = 1.5\n");
    let err = config.unwrap().guards().unwrap_err().to_string();
    assert!(err.starts_with(&f.path().display().to_string()), "{err}");
    assert!(err.contains("guards.shrink_ratio"), "{err}");
    let (_f, config) = config_from("[retry]\ndelay = \"soon\"\n");
    let err = config
        .unwrap()
        .retry(&Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("retry.delay"), "{err}");
}

#[test]
fn a_syntax_error_names_the_line() {
    let (_f, config) = config_from("api_url = \"https://x\"\n[[store]\n");
    let err = config.unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn two_stores_with_one_store_id_are_refused() {
    let (_f, config) = config_from(
        "[[store]]\nname = \"a\"\nstore_id = \"1\"\nstore_api_key = { env = \"K\" }\n\
         [[store]]\nname = \"b\"\nstore_id = \"1\"\nstore_api_key = { env = \"K\" }\n",
    );
    let err = config.unwrap().stores().unwrap_err().to_string();
    assert!(err.contains("repeats"), "{err}");
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let (_f, config) = config_from(
        "api_url = \"https://file.example\"\nstate_dir = \"/file/state\"\n[retry]\nretries = 9\ntimeout = \"5s\"\n",
    );
    let config = config.unwrap();
    let env = env_of(&[
        ("RRFEED_API_URL", "https://env.example"),
        ("RRFEED_PARTNER_API_KEY", "pk"),
        ("RRFEED_STATE_DIR", "/env/state"),
    ]);
    let api = config
        .api(&env, &Overrides::default(), Duration::from_secs(1))
        .unwrap();
    assert_eq!(api.base_url.host_str(), Some("env.example"));
    assert_eq!(
        config.state_dir(&Overrides::default(), &env),
        PathBuf::from("/env/state")
    );
    let flags = Overrides {
        state_dir: Some("/flag/state".into()),
        retries: Some(2),
        ..Overrides::default()
    };
    assert_eq!(config.state_dir(&flags, &env), PathBuf::from("/flag/state"));
    assert_eq!(
        config.state_dir(&Overrides::default(), &env_of(&[])),
        PathBuf::from("/file/state")
    );
    let retry = config.retry(&flags).unwrap();
    assert_eq!((retry.retries, retry.timeout), (2, Duration::from_secs(5)));
}

#[test]
fn a_single_configured_store_is_the_default_and_several_need_a_name() {
    let one = "[[store]]\nname = \"a\"\nstore_id = \"1\"\nstore_api_key = { env = \"K\" }\n";
    let env = env_of(&[("K", "k")]);
    let (_f, config) = config_from(one);
    assert_eq!(config.unwrap().default_store(&env).unwrap().name, "a");
    let two = format!(
        "{one}[[store]]\nname = \"b\"\nstore_id = \"2\"\nstore_api_key = {{ env = \"K\" }}\n"
    );
    let (_f, config) = config_from(&two);
    let config = config.unwrap();
    let err = config.default_store(&env).unwrap_err();
    assert!(err.to_string().contains("--store NAME"), "{err}");
    assert_eq!(config.store_named("b").unwrap().store_id, "2");
    assert_eq!(config.store_named("2").unwrap().name, "b");
    let err = config.store_named("c").unwrap_err().to_string();
    assert!(err.contains("configured: a, b"), "{err}");
}

#[test]
fn webhook_settings_come_from_flags_then_environment_then_file() {
    let (_file, config) = config_from(
        "[webhook]\nsecret = { env = \"HOOK\" }\nlisten = \"0.0.0.0:9000\"\nmax_rows = 50\n\
         request_timeout = \"5s\"\n",
    );
    let config = config.unwrap();
    let env = env_of(&[("HOOK", "file-named-secret-123456")]);
    let w = config.webhook(&env, &WebhookOverrides::default()).unwrap();
    assert_eq!(w.secret.expose_secret(), "file-named-secret-123456");
    assert_eq!(w.listen.to_string(), "0.0.0.0:9000");
    assert_eq!((w.max_rows, w.max_body_bytes), (50, 256 * 1024));
    assert_eq!(w.request_timeout, Duration::from_secs(5));
    let env = env_of(&[
        ("HOOK", "file-named-secret-123456"),
        ("RRFEED_WEBHOOK_SECRET", "environment-secret-7890"),
    ]);
    let flags = WebhookOverrides {
        max_rows: Some(7),
        ..WebhookOverrides::default()
    };
    let w = config.webhook(&env, &flags).unwrap();
    assert_eq!(w.secret.expose_secret(), "environment-secret-7890");
    assert_eq!(w.max_rows, 7);
}

#[test]
fn a_short_webhook_secret_is_refused_without_being_shown() {
    let env = env_of(&[("RRFEED_WEBHOOK_SECRET", "short-one")]);
    let err = Config::default()
        .webhook(&env, &WebhookOverrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("fewer than 16 characters"), "{err}");
    assert!(!err.contains("short-one"), "{err}");
}

#[test]
fn only_loopback_hosts_count_as_loopback() {
    for (url, want) in [
        ("http://localhost:8080", true),
        ("http://127.0.0.5/", true),
        ("http://[::1]:9/", true),
        ("http://10.0.0.1/", false),
        ("http://localhost.example.com/", false),
    ] {
        assert_eq!(is_loopback(&Url::parse(url).unwrap()), want, "{url}");
    }
}
