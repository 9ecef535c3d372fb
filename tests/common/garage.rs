//! A real single-node Garage S3 server for tests, on free loopback ports in
//! a temp dir, stopped on drop. Fails loudly when Garage is missing or does
//! not come up. A test can kill it and start it again on the same data and
//! ports, like a server restart.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Garage with one bucket and one key.
pub struct Garage {
    child: Child,
    config: PathBuf,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT` of the S3 API.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn hex(bytes: usize) -> String {
    let mut out = String::new();
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        ^ (std::process::id() as u64) << 32;
    for _ in 0..bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{:02x}", x as u8));
    }
    out
}

/// The garage binary: on PATH or in ~/.cargo/bin.
fn garage_binary() -> PathBuf {
    let cargo_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/garage"));
    if let Some(p) = cargo_bin.filter(|p| p.exists()) {
        return p;
    }
    PathBuf::from("garage")
}

impl Garage {
    /// Starts Garage and waits until the bucket answers (at most 60 s).
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rpc, s3) = (free_port(), free_port());
        let config = dir.path().join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                secret = hex(32),
            ),
        )
        .expect("write garage.toml");
        let access_key = format!("GK{}", hex(12));
        let secret_key = hex(32);
        let bucket = "vidpipe-test".to_string();
        let child = spawn(&config, &access_key, &secret_key, &bucket);
        let garage = Garage {
            child,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket,
            access_key,
            secret_key,
            _dir: dir,
        };
        garage.wait_ready();
        garage
    }

    /// Kills the server at once (SIGKILL), as a crash would; its data
    /// stays for [`restart`](Self::restart).
    pub fn kill(&mut self) {
        self.child.kill().expect("kill Garage");
        self.child.wait().expect("wait for Garage");
    }

    /// Starts the killed server again on the same data, metadata and ports,
    /// and waits until the bucket answers (at most 60 s).
    pub fn restart(&mut self) {
        self.child = spawn(
            &self.config,
            &self.access_key,
            &self.secret_key,
            &self.bucket,
        );
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let rt = runtime();
        let client = self.client();
        loop {
            let ok = rt
                .block_on(
                    client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .max_keys(1)
                        .send(),
                )
                .is_ok();
            if ok {
                return;
            }
            let log =
                std::fs::read_to_string(self._dir.path().join("garage.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "Garage did not become ready in 60 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new key that may only read the bucket: (id, secret).
    pub fn read_only_key(&self) -> (String, String) {
        let admin = |args: &[&str]| {
            let out = Command::new(garage_binary())
                .arg("-c")
                .arg(&self.config)
                .args(args)
                .output()
                .expect("run garage");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "garage {args:?}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text
        };
        let created = admin(&["key", "create", "read-only"]);
        let field = |name: &str| {
            created
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in {created}"))
        };
        let (id, secret) = (field("Key ID:"), field("Secret key:"));
        admin(&[
            "bucket",
            "allow",
            "--read",
            "--key",
            "read-only",
            &self.bucket,
        ]);
        (id, secret)
    }

    /// Environment for a vidpipe process talking to this server.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
            .env("AWS_REGION", "garage")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
    }

    /// An SDK client for checking what the server holds.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let creds = aws_sdk_s3::config::Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "test",
        );
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("garage"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Starts a multipart upload of `key` the way a tool without
    /// checksums does (no checksum algorithm, none sent with the parts),
    /// sends `parts` as parts 1, 2, … and leaves it unfinished.
    #[allow(dead_code)]
    pub fn start_upload_without_checksums(&self, key: &str, parts: &[Vec<u8>]) {
        use aws_sdk_s3::config::RequestChecksumCalculation;
        let rt = runtime();
        let config = self
            .client()
            .config()
            .to_builder()
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let created = rt
            .block_on(
                client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .expect("create multipart upload");
        let id = created.upload_id().expect("upload id");
        for (i, bytes) in parts.iter().enumerate() {
            rt.block_on(
                client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(i as i32 + 1)
                    .body(aws_sdk_s3::primitives::ByteStream::from(bytes.clone()))
                    .send(),
            )
            .expect("upload part");
        }
    }

    /// Stores `bytes` at `key`.
    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        let rt = runtime();
        let client = self.client();
        rt.block_on(
            client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
                .send(),
        )
        .expect("put object");
    }

    /// The Content-Type and Cache-Control a HEAD of `key` answers.
    pub fn headers(&self, key: &str) -> (Option<String>, Option<String>) {
        let rt = runtime();
        let client = self.client();
        let head = rt
            .block_on(client.head_object().bucket(&self.bucket).key(key).send())
            .unwrap_or_else(|e| panic!("head {key}: {e}"));
        (
            head.content_type().map(str::to_string),
            head.cache_control().map(str::to_string),
        )
    }

    /// The bytes stored at `key`.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let rt = runtime();
        let client = self.client();
        let object = rt
            .block_on(client.get_object().bucket(&self.bucket).key(key).send())
            .unwrap_or_else(|e| panic!("get {key}: {e}"));
        rt.block_on(object.body.collect())
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    /// Every object under `prefix`, as listed (all pages).
    fn listing(&self, prefix: &str) -> Vec<aws_sdk_s3::types::Object> {
        let rt = runtime();
        let client = self.client();
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let page = rt
                .block_on(
                    client
                        .list_objects_v2()
                        .bucket(&self.bucket)
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send(),
                )
                .expect("list objects");
            objects.extend(page.contents().iter().cloned());
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                return objects;
            }
        }
    }

    /// Every object under `prefix`: key, ETag and when it was stored.
    pub fn objects(&self, prefix: &str) -> Vec<(String, String, String)> {
        self.listing(prefix)
            .iter()
            .map(|o| {
                (
                    o.key().unwrap_or_default().to_string(),
                    o.e_tag().unwrap_or_default().to_string(),
                    o.last_modified().map(|t| t.to_string()).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// When the newest object under `prefix` was stored.
    pub fn newest(&self, prefix: &str) -> Option<std::time::SystemTime> {
        self.listing(prefix)
            .iter()
            .filter_map(|o| o.last_modified().and_then(|t| (*t).try_into().ok()))
            .max()
    }

    /// Every key under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.listing(prefix)
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// Of the segments `before` lists (from [`objects`](Self::objects)),
    /// how many per rendition were stored again since (another ETag or
    /// time), e.g. by a run that resumed.
    pub fn stored_again(
        &self,
        before: &[(String, String, String)],
    ) -> std::collections::BTreeMap<String, u32> {
        let after = self.objects("");
        let mut again = std::collections::BTreeMap::new();
        for (key, etag, stored) in before {
            let now = after
                .iter()
                .find(|(k, _, _)| k == key)
                .unwrap_or_else(|| panic!("{key} is gone"));
            if (&now.1, &now.2) != (etag, stored) {
                let rendition = key.rsplit('/').nth(1).unwrap_or_default().to_string();
                *again.entry(rendition).or_default() += 1;
            }
        }
        again
    }

    /// Downloads everything under `prefix` into `dir`, keeping relative keys.
    pub fn download(&self, prefix: &str, dir: &std::path::Path) {
        let rt = runtime();
        let client = self.client();
        for key in self.keys(prefix) {
            let object = rt
                .block_on(client.get_object().bucket(&self.bucket).key(&key).send())
                .expect("get object");
            let bytes = rt
                .block_on(object.body.collect())
                .expect("body")
                .into_bytes();
            let path = dir.join(key.strip_prefix(prefix).expect("under prefix"));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("write");
        }
    }
}

/// Starts `garage server` with `config`, the default key and bucket (kept
/// when they exist already), logging to `garage.log` beside the config.
fn spawn(config: &Path, access_key: &str, secret_key: &str, bucket: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("garage.log"))
        .expect("log file");
    Command::new(garage_binary())
        .arg("-c")
        .arg(config)
        .args(["server", "--single-node", "--default-bucket"])
        .env("GARAGE_DEFAULT_ACCESS_KEY", access_key)
        .env("GARAGE_DEFAULT_SECRET_KEY", secret_key)
        .env("GARAGE_DEFAULT_BUCKET", bucket)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start Garage ({e}); run `bash scripts/setup --test`, which installs it")
        })
}

/// A runtime for the SDK calls of a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
