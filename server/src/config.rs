//! Command line, configuration file and environment: everything the server
//! is told at start, resolved into one [`Config`]. Secrets come from the
//! file or the environment only; no flag takes one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomstate_dialects::VendorId;
use serde::Deserialize;

use crate::limits;

/// Whether the write-ahead log waits for the disk after each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// One `fdatasync` per batch, before any reply of the batch.
    Always,
    /// No `fdatasync` (tests only: a crash may lose acknowledged writes).
    Never,
}

/// The resolved configuration of one server process.
#[derive(Clone, Debug)]
pub struct Config {
    /// The vendor whose API this process serves.
    pub vendor: VendorId,
    /// Where to listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The directory of the shards' logs and snapshots; `None` keeps the
    /// state in memory only.
    pub data: Option<PathBuf>,
    /// Number of shards (engine tasks).
    pub shards: usize,
    /// Whether `shards` was asked for (flag or file) rather than taken
    /// from the core count: a data directory made with another count
    /// refuses an asked-for count and overrides a default one.
    pub shards_given: bool,
    /// Log sync policy.
    pub fsync: Fsync,
    /// Truncate a log at a corrupt record instead of refusing to start.
    pub repair: bool,
    /// Application request rate per shard: `None` keeps the vendor's
    /// documented rate, `Some(0)` turns the limit off.
    pub requests_per_second: Option<u32>,
    /// Grace period of a dropped connection, in milliseconds; `None` keeps
    /// the profile's.
    pub disconnect_grace_ms: Option<u64>,
    /// Credentials.
    pub auth: AuthConfig,
    /// Snapshot after this many log records.
    pub snapshot_every_records: u64,
    /// Snapshot after this much time with records in the log.
    pub snapshot_every: Duration,
    /// Threads that serve HTTP and WebSocket connections (the shards and
    /// their log threads come on top).
    pub threads: usize,
    /// How long an idle keep-alive connection stays open between requests
    /// (a request's headers must still arrive within
    /// [`limits::HEADER_READ_TIMEOUT`] once its first byte has).
    pub keep_alive_idle: Duration,
}

/// Credentials, by vendor, and the server's own.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// Bearer token of the management API (`/admin/...`).
    pub admin_token: String,
    /// HMAC-SHA256 key of client (WebSocket) tokens.
    pub token_secret: String,
    /// Lifetime of a client token.
    pub token_ttl: Duration,
    /// Easemob / Agora Chat app token (`Authorization: Bearer …`).
    pub app_token: String,
    /// Tencent SDKAppID.
    pub tencent_sdkappid: String,
    /// Tencent UserSig accepted, by identifier.
    pub tencent_usersigs: BTreeMap<String, String>,
    /// Tencent App admin identifiers (they act as the app admin).
    pub tencent_admin_identifiers: Vec<String>,
    /// NetEase AppKey.
    pub netease_app_key: String,
    /// NetEase AppSecret.
    pub netease_app_secret: String,
    /// How far `CurTime` (NetEase) or `Timestamp` (ZEGO) may be from the
    /// server's clock.
    pub signature_window: Duration,
    /// ZEGO AppId.
    pub zego_app_id: String,
    /// ZEGO ServerSecret.
    pub zego_server_secret: String,
}

/// The configuration file (TOML, or JSON when the name ends in `.json`).
/// Every field is optional here; what a vendor needs is checked after the
/// environment is read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    vendor: Option<String>,
    listen: Option<String>,
    data: Option<PathBuf>,
    shards: Option<usize>,
    fsync: Option<String>,
    requests_per_second: Option<u32>,
    disconnect_grace_ms: Option<u64>,
    snapshot_every_records: Option<u64>,
    snapshot_every_seconds: Option<u64>,
    threads: Option<usize>,
    keep_alive_idle_seconds: Option<u64>,
    admin_token: Option<String>,
    token_secret: Option<String>,
    token_ttl_seconds: Option<u64>,
    app_token: Option<String>,
    tencent_sdkappid: Option<u64>,
    tencent_usersigs: Option<BTreeMap<String, String>>,
    tencent_admin_identifiers: Option<Vec<String>>,
    netease_app_key: Option<String>,
    netease_app_secret: Option<String>,
    signature_window_seconds: Option<u64>,
    zego_app_id: Option<u64>,
    zego_server_secret: Option<String>,
}

/// The environment variables read for secrets (they win over the file).
pub const ENV_SECRETS: [&str; 6] = [
    "ROOMSTATE_ADMIN_TOKEN",
    "ROOMSTATE_TOKEN_SECRET",
    "ROOMSTATE_APP_TOKEN",
    "ROOMSTATE_TENCENT_USERSIG",
    "ROOMSTATE_NETEASE_APP_SECRET",
    "ROOMSTATE_ZEGO_SERVER_SECRET",
];

const USAGE: &str = "usage: roomstate-server --vendor tencent|easemob|agora_chat|netease|zego \
[--listen 127.0.0.1:PORT] [--data DIR] [--shards N] [--threads N] [--fsync always|never] \
[--repair] [--config FILE]\nsecrets: in the config file or ROOMSTATE_ADMIN_TOKEN, ROOMSTATE_TOKEN_SECRET, \
ROOMSTATE_APP_TOKEN, ROOMSTATE_TENCENT_USERSIG, ROOMSTATE_NETEASE_APP_SECRET, \
ROOMSTATE_ZEGO_SERVER_SECRET";

impl Config {
    /// A configuration for `vendor`, in memory, with every secret set
    /// (`<VARIABLE>-secret`): for the crate's unit tests.
    #[cfg(test)]
    #[allow(clippy::expect_used)]
    pub(crate) fn for_tests(vendor: VendorId) -> Config {
        let mut config = Config::from_args(["--vendor".to_owned(), "easemob".to_owned()], |k| {
            Some(format!("{k}-secret"))
        })
        .expect("a valid configuration");
        config.vendor = vendor;
        config
    }

    /// Parses the command line (without the program name), reads the
    /// configuration file it names and the environment (`env` looks a
    /// variable up). Flags win over the file; the environment wins over
    /// the file for secrets.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let mut flags: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut repair = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let key = match name.as_str() {
                "--repair" => {
                    repair = true;
                    continue;
                }
                "--help" | "-h" => return Err(USAGE.to_owned()),
                "--vendor" => "vendor",
                "--listen" => "listen",
                "--data" => "data",
                "--shards" => "shards",
                "--threads" => "threads",
                "--fsync" => "fsync",
                "--config" => "config",
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            };
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?,
            };
            flags.insert(key, value);
        }
        let file = match flags.get("config") {
            Some(path) => read_file(Path::new(path))?,
            None => FileConfig::default(),
        };
        resolve(&flags, file, repair, env)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| format!("config {}: {e}", path.display()))
}

fn resolve(
    flags: &BTreeMap<&'static str, String>,
    file: FileConfig,
    repair: bool,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, String> {
    let vendor_name = flags
        .get("vendor")
        .cloned()
        .or(file.vendor)
        .ok_or_else(|| format!("--vendor is required\n{USAGE}"))?;
    let vendor = VendorId::from_name(&vendor_name)
        .ok_or_else(|| format!("unknown vendor {vendor_name:?}\n{USAGE}"))?;
    let listen_text = flags
        .get("listen")
        .cloned()
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listen: SocketAddr = listen_text
        .parse()
        .map_err(|e| format!("--listen {listen_text:?}: {e}"))?;
    let data = flags.get("data").map(PathBuf::from).or(file.data);
    let shards_given = flags.contains_key("shards") || file.shards.is_some();
    let shards = match flags.get("shards") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|e| format!("--shards {n:?}: {e}"))?,
        None => file.shards.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
    };
    if shards == 0 || shards > limits::MAX_SHARDS {
        return Err(format!(
            "--shards must be 1..={}, not {shards}",
            limits::MAX_SHARDS
        ));
    }
    let threads = match flags.get("threads") {
        Some(n) => n
            .parse::<usize>()
            .map_err(|e| format!("--threads {n:?}: {e}"))?,
        None => file.threads.unwrap_or_else(default_threads),
    };
    if threads == 0 || threads > limits::MAX_THREADS {
        return Err(format!(
            "--threads must be 1..={}, not {threads}",
            limits::MAX_THREADS
        ));
    }
    let keep_alive_idle = Duration::from_secs(
        file.keep_alive_idle_seconds
            .unwrap_or(limits::KEEP_ALIVE_IDLE_SECONDS),
    );
    if keep_alive_idle.is_zero() {
        return Err("keep_alive_idle_seconds must be at least 1".to_owned());
    }
    let fsync = match flags
        .get("fsync")
        .cloned()
        .or(file.fsync)
        .as_deref()
        .unwrap_or("always")
    {
        "always" => Fsync::Always,
        "never" => Fsync::Never,
        other => return Err(format!("--fsync must be always or never, not {other:?}")),
    };
    let secret = |var: &str, from_file: Option<String>| env(var).or(from_file);
    let mut usersigs = file.tencent_usersigs.unwrap_or_default();
    if let Some(sig) = env("ROOMSTATE_TENCENT_USERSIG") {
        // One UserSig from the environment is the administrator's.
        usersigs.insert(limits::TENCENT_DEFAULT_ADMIN.to_owned(), sig);
    }
    let auth = AuthConfig {
        admin_token: secret("ROOMSTATE_ADMIN_TOKEN", file.admin_token).unwrap_or_default(),
        token_secret: secret("ROOMSTATE_TOKEN_SECRET", file.token_secret).unwrap_or_default(),
        token_ttl: Duration::from_secs(
            file.token_ttl_seconds
                .unwrap_or(limits::DEFAULT_TOKEN_TTL_SECONDS),
        ),
        app_token: secret("ROOMSTATE_APP_TOKEN", file.app_token).unwrap_or_default(),
        tencent_sdkappid: file
            .tencent_sdkappid
            .map(|n| n.to_string())
            .unwrap_or_default(),
        tencent_usersigs: usersigs,
        tencent_admin_identifiers: file
            .tencent_admin_identifiers
            .unwrap_or_else(|| vec![limits::TENCENT_DEFAULT_ADMIN.to_owned()]),
        netease_app_key: file.netease_app_key.unwrap_or_default(),
        netease_app_secret: secret("ROOMSTATE_NETEASE_APP_SECRET", file.netease_app_secret)
            .unwrap_or_default(),
        signature_window: Duration::from_secs(
            file.signature_window_seconds
                .unwrap_or(limits::DEFAULT_SIGNATURE_WINDOW_SECONDS),
        ),
        zego_app_id: file.zego_app_id.map(|n| n.to_string()).unwrap_or_default(),
        zego_server_secret: secret("ROOMSTATE_ZEGO_SERVER_SECRET", file.zego_server_secret)
            .unwrap_or_default(),
    };
    check_auth(vendor, &auth)?;
    Ok(Config {
        vendor,
        listen,
        data,
        shards,
        shards_given,
        fsync,
        repair,
        requests_per_second: file.requests_per_second,
        disconnect_grace_ms: file.disconnect_grace_ms,
        auth,
        snapshot_every_records: file
            .snapshot_every_records
            .unwrap_or(limits::SNAPSHOT_EVERY_RECORDS),
        snapshot_every: Duration::from_secs(
            file.snapshot_every_seconds
                .unwrap_or(limits::SNAPSHOT_EVERY_SECONDS),
        ),
        threads,
        keep_alive_idle,
    })
}

/// One HTTP thread per core: the shards run on threads of their own, and
/// more HTTP threads than cores only adds switches between them.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Every credential the vendor needs is there (an empty secret would let
/// anyone in).
fn check_auth(vendor: VendorId, a: &AuthConfig) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut need = |ok: bool, what: &'static str| {
        if !ok {
            missing.push(what);
        }
    };
    need(
        !a.admin_token.is_empty(),
        "admin_token (ROOMSTATE_ADMIN_TOKEN)",
    );
    need(
        !a.token_secret.is_empty(),
        "token_secret (ROOMSTATE_TOKEN_SECRET)",
    );
    match vendor {
        VendorId::Easemob | VendorId::AgoraChat => {
            need(!a.app_token.is_empty(), "app_token (ROOMSTATE_APP_TOKEN)");
        }
        VendorId::Tencent => {
            need(!a.tencent_sdkappid.is_empty(), "tencent_sdkappid");
            need(
                !a.tencent_usersigs.is_empty()
                    && a.tencent_usersigs.values().all(|s| !s.is_empty()),
                "tencent_usersigs (ROOMSTATE_TENCENT_USERSIG)",
            );
        }
        VendorId::NetEase => {
            need(!a.netease_app_key.is_empty(), "netease_app_key");
            need(
                !a.netease_app_secret.is_empty(),
                "netease_app_secret (ROOMSTATE_NETEASE_APP_SECRET)",
            );
        }
        VendorId::Zego => {
            need(!a.zego_app_id.is_empty(), "zego_app_id");
            need(
                !a.zego_server_secret.is_empty(),
                "zego_server_secret (ROOMSTATE_ZEGO_SERVER_SECRET)",
            );
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the {} server needs these credentials (config file or environment): {}",
            vendor.name(),
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn file(name: &str, text: &str) -> (std::path::PathBuf, String) {
        let dir =
            std::env::temp_dir().join(format!("roomstate-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        (dir, shown)
    }

    #[test]
    fn a_toml_file_gives_secrets_and_flags_win_over_it() {
        let (dir, path) = file(
            "c.toml",
            "vendor = \"netease\"\nshards = 3\nadmin_token = \"a\"\ntoken_secret = \"t\"\n\
             netease_app_key = \"k\"\nnetease_app_secret = \"from-file\"\n",
        );
        let c = Config::from_args(args(&["--config", &path, "--shards", "2"]), |_| None).unwrap();
        assert_eq!(c.vendor, VendorId::NetEase);
        assert_eq!(c.shards, 2);
        assert_eq!(c.auth.netease_app_secret, "from-file");
        assert_eq!(c.fsync, Fsync::Always);
        // The environment wins over the file for secrets.
        let c = Config::from_args(args(&["--config", &path]), |k| {
            (k == "ROOMSTATE_NETEASE_APP_SECRET").then(|| "from-env".to_owned())
        })
        .unwrap();
        assert_eq!(c.auth.netease_app_secret, "from-env");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_json_file_works_too_and_unknown_keys_are_refused() {
        let (dir, path) = file(
            "c.json",
            r#"{"vendor": "zego", "zego_app_id": 1234, "zego_server_secret": "s",
                "admin_token": "a", "token_secret": "t", "fsync": "never"}"#,
        );
        let c = Config::from_args(args(&["--config", &path]), |_| None).unwrap();
        assert_eq!((c.vendor, c.fsync), (VendorId::Zego, Fsync::Never));
        assert_eq!(c.auth.zego_app_id, "1234");
        let (dir2, bad) = file("bad.toml", "vendor = \"zego\"\napp_secret = \"typo\"\n");
        let err = Config::from_args(args(&["--config", &bad]), |_| None).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(dir2).unwrap();
    }

    #[test]
    fn each_vendor_names_the_credentials_it_lacks() {
        let env = |k: &str| match k {
            "ROOMSTATE_ADMIN_TOKEN" | "ROOMSTATE_TOKEN_SECRET" => Some("x".to_owned()),
            _ => None,
        };
        for (vendor, lacking) in [
            ("tencent", "tencent_sdkappid"),
            ("easemob", "ROOMSTATE_APP_TOKEN"),
            ("agora_chat", "ROOMSTATE_APP_TOKEN"),
            ("netease", "netease_app_key"),
            ("zego", "ROOMSTATE_ZEGO_SERVER_SECRET"),
        ] {
            let err = Config::from_args(args(&["--vendor", vendor]), env).unwrap_err();
            assert!(err.contains(lacking), "{vendor}: {err}");
        }
        assert!(Config::from_args(args(&["--vendor", "nope"]), env).is_err());
        assert!(Config::from_args(args(&["--vendor", "easemob", "--shards", "0"]), env).is_err());
    }

    #[test]
    fn shards_and_threads_take_one_to_their_maximum() {
        let env = |k: &str| match k {
            "ROOMSTATE_ADMIN_TOKEN" | "ROOMSTATE_TOKEN_SECRET" | "ROOMSTATE_APP_TOKEN" => {
                Some("x".to_owned())
            }
            _ => None,
        };
        let with = |flag: &str, n: usize| {
            Config::from_args(args(&["--vendor", "easemob", flag, &n.to_string()]), env)
        };
        for n in [1, 2, limits::MAX_SHARDS] {
            assert_eq!(with("--shards", n).unwrap().shards, n);
        }
        for n in [1, 2, limits::MAX_THREADS] {
            assert_eq!(with("--threads", n).unwrap().threads, n);
        }
        for (flag, max) in [
            ("--shards", limits::MAX_SHARDS),
            ("--threads", limits::MAX_THREADS),
        ] {
            for n in [0, max + 1] {
                let err = with(flag, n).unwrap_err();
                assert_eq!(err, format!("{flag} must be 1..={max}, not {n}"));
            }
        }
        // Unset, both follow the cores this process may use.
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let c = Config::from_args(args(&["--vendor", "easemob"]), env).unwrap();
        assert_eq!((c.shards, c.threads), (cores, cores));
    }

    #[test]
    fn an_empty_tencent_usersig_counts_as_missing() {
        let (dir, path) = file(
            "t.toml",
            "vendor = \"tencent\"\nadmin_token = \"a\"\ntoken_secret = \"t\"\n\
             tencent_sdkappid = 1400000000\n\
             [tencent_usersigs]\nadministrator = \"sig\"\nops = \"\"\n",
        );
        let err = Config::from_args(args(&["--config", &path]), |_| None).unwrap_err();
        assert!(err.contains("tencent_usersigs"), "{err}");
        // The environment's signature is the administrator's; it does not
        // fill in ops's.
        let c = Config::from_args(args(&["--config", &path]), |k| {
            (k == "ROOMSTATE_TENCENT_USERSIG").then(|| "sig".to_owned())
        });
        assert!(c.is_err(), "ops's signature is still empty");
        // Every signature given: taken.
        std::fs::write(
            &path,
            "vendor = \"tencent\"\nadmin_token = \"a\"\ntoken_secret = \"t\"\n\
             tencent_sdkappid = 1400000000\n[tencent_usersigs]\nops = \"sig\"\n",
        )
        .unwrap();
        let c = Config::from_args(args(&["--config", &path]), |_| None).unwrap();
        assert_eq!(c.auth.tencent_usersigs.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
