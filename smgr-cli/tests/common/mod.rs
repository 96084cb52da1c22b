//! Running the `smgr` binary in tests, and building small data
//! directories for it.

#![allow(dead_code)] // each test file uses part of this

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use smgr_api::{BlockSize, PageFormat, PageVerifier};

/// The built `smgr` binary, quiet unless a test asks for logs.
pub fn smgr() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smgr"));
    command.env_remove("RUST_LOG");
    command
}

/// What a run printed, and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(command: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("run smgr");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `smgr ARGS…`.
pub fn smgr_run(args: &[&str]) -> Run {
    run(smgr().args(args))
}

/// `smgr verify --json ARGS…`, its report parsed.
pub fn verify_json(command: &mut Command) -> (Run, serde_json::Value) {
    let run = run(command);
    let report = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("verify --json printed no JSON ({err}): {run:?}"));
    (run, report)
}

/// The `(file, block in file)` pairs of a JSON report's bad blocks.
pub fn bad_blocks(report: &serde_json::Value) -> Vec<(String, u64)> {
    blocks_listed(report, "bad_blocks")
}

/// (file, block in file) of every page a report lists under `key`
/// (`bad_blocks`, `server_rejects`).
pub fn blocks_listed(report: &serde_json::Value, key: &str) -> Vec<(String, u64)> {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} array in {report}"))
        .iter()
        .map(|b| {
            (
                b["file"].as_str().expect("file").to_owned(),
                b["block_in_file"].as_u64().expect("block_in_file"),
            )
        })
        .collect()
}

/// Adds the S3 test server's endpoint and keys to `command`, or returns
/// false (the test then skips, unless SMGR_REQUIRE_S3=1 made that fail).
pub fn with_s3(command: &mut Command) -> bool {
    let Some(store) = integration::s3_server() else {
        return false;
    };
    if let Some(endpoint) = store.endpoint {
        command.arg("--endpoint").arg(endpoint);
    }
    for (var, value) in [
        ("AWS_ACCESS_KEY_ID", store.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", store.secret_access_key),
        ("AWS_REGION", store.region),
    ] {
        if let Some(value) = value {
            command.env(var, value);
        }
    }
    true
}

/// Writes a fork of `blocks` valid, checksummed pages as segment files of
/// `segment_blocks` blocks under `dir/relpath` (`base/5/16396`).
pub fn write_fork(dir: &Path, relpath: &str, blocks: u32, segment_blocks: u32) {
    let bs = BlockSize::DEFAULT;
    let verifier = PageVerifier::new(PageFormat::Postgres { checksums: true }, bs);
    let mut segno = 0;
    let mut first = 0;
    loop {
        let n = (blocks - first).min(segment_blocks);
        let mut bytes = Vec::with_capacity(n as usize * bs.bytes());
        for block in first..first + n {
            bytes.extend_from_slice(&smgr_cli::demo::demo_page(&verifier, bs, block));
        }
        let name = if segno == 0 {
            relpath.to_owned()
        } else {
            format!("{relpath}.{segno}")
        };
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write segment");
        first += n;
        segno += 1;
        if first >= blocks {
            break;
        }
    }
}

/// Flips one byte of a file.
pub fn flip(path: &Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset] ^= mask;
    std::fs::write(path, bytes).expect("write");
}

/// Changes 8 KiB page `block` of the segment file at `path` in place.
pub fn edit_page(path: &Path, block: usize, edit: impl FnOnce(&mut [u8])) {
    let mut bytes = std::fs::read(path).expect("read");
    edit(&mut bytes[block * 8192..(block + 1) * 8192]);
    std::fs::write(path, bytes).expect("write");
}

/// A PostgreSQL 15 control file: shut down, data checksums on, 8 KiB
/// blocks, segments of `segment_blocks`.
pub fn pg15_control(segment_blocks: u32) -> smgr_cli::control::ControlFile {
    smgr_cli::control::ControlFile {
        version: 1300,
        catalog_version: 202209061,
        state: smgr_cli::control::DbState(1),
        block_size: 8192,
        segment_blocks,
        system_identifier: 7_000_000_000_000_000_001,
        checkpoint: 0x0200_0060,
        redo: 0x0200_0028,
        timeline: 1,
        data_checksum_version: 1,
    }
}

/// Writes a cluster's own files into `dir`: `global/pg_control` and
/// `PG_VERSION` (`major`).
pub fn write_cluster_files(dir: &Path, control: &smgr_cli::control::ControlFile, major: &str) {
    std::fs::create_dir_all(dir.join("global")).expect("mkdir global");
    std::fs::write(dir.join("global/pg_control"), control.to_bytes()).expect("write pg_control");
    std::fs::write(dir.join("PG_VERSION"), format!("{major}\n")).expect("write PG_VERSION");
}

/// `pg_checksums --check -D data`: its run, its "Files/Blocks scanned"
/// counts and its bad blocks as (file relative to data, block in file).
pub fn pg_checksums_check(tool: &Path, data: &Path) -> (Run, u64, u64, BTreeSet<(String, u64)>) {
    let run = run(Command::new(tool).arg("--check").arg("-D").arg(data));
    let count = |label: &str| -> u64 {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("pg_checksums printed no {label}: {run:?}"))
    };
    let (files, blocks) = (count("Files scanned:"), count("Blocks scanned:"));
    // Lines like: pg_checksums: error: checksum verification failed in
    // file "D/base/1/2", block 3: calculated checksum … but block contains …
    let prefix = format!("{}/", data.display());
    let bad = run
        .stderr
        .lines()
        .filter_map(|line| line.split_once("checksum verification failed in file \""))
        .map(|(_, rest)| {
            let (file, rest) = rest.split_once("\", block ").unwrap();
            let block = rest.split(':').next().unwrap().parse().unwrap();
            (file.strip_prefix(&prefix).unwrap().to_owned(), block)
        })
        .collect();
    (run, files, blocks, bad)
}

pub fn smgr_verify(location: &str, s3: bool) -> (Run, serde_json::Value) {
    let mut command = smgr();
    command.args(["verify", "--json", location]);
    if s3 {
        assert!(with_s3(&mut command));
    }
    verify_json(&mut command)
}

/// Uploads `data` to a fresh prefix on the S3 server (with `extra`
/// arguments); `None` without one. Returns the URL, how many files went up
/// in parts, and a guard that deletes the upload at the end of the test.
pub fn upload(
    data: &Path,
    test: &str,
    extra: &[&str],
) -> Option<(String, u64, integration::RemoveOnDrop)> {
    let url = integration::s3_url(test);
    let mut command = smgr();
    command.arg("upload").arg(data).arg(&url).args(extra);
    if !with_s3(&mut command) {
        return None;
    }
    let removal = integration::RemoveOnDrop(url.clone());
    let up = run(&mut command);
    assert_eq!(up.code, 0, "{up:?}");
    let in_parts = up
        .stdout
        .split_once(" in parts")
        .and_then(|(before, _)| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no upload summary: {up:?}"));
    Some((url, in_parts, removal))
}

/// The OID of the (first) user tablespace of the cluster at `data`.
pub fn tablespace_oid(data: &Path) -> String {
    std::fs::read_dir(data.join("pg_tblspc"))
        .unwrap()
        .next()
        .expect("a tablespace link")
        .unwrap()
        .file_name()
        .into_string()
        .unwrap()
}

/// `program` run as the postgres user when this runs as root (PostgreSQL
/// refuses to run as root).
pub fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).stdout.trim() == "0"
}

/// Hands `path` (recursively) to the postgres user when running as root.
pub fn give_to_postgres(path: &Path) {
    if is_root() {
        let chown = run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path));
        assert_eq!(chown.code, 0, "{chown:?}");
    }
}

/// Calls `file` with every file (relative path, bytes) and `dir` with
/// every directory under `root`, following links as `upload` does
/// (`postmaster.pid` left out).
pub fn each_entry(root: &Path, file: &mut dyn FnMut(String, Vec<u8>), dir: &mut dyn FnMut(String)) {
    fn walk(
        at: &Path,
        rel: &str,
        file: &mut dyn FnMut(String, Vec<u8>),
        dir: &mut dyn FnMut(String),
    ) {
        for entry in std::fs::read_dir(at).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if std::fs::metadata(entry.path()).unwrap().is_dir() {
                dir(path.clone());
                walk(&entry.path(), &path, file, dir);
            } else if path != "postmaster.pid" {
                file(path, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    walk(root, "", file, dir);
}

/// Every file (relative path → bytes) and directory under `root`, as
/// [`each_entry`] finds them.
pub fn contents(root: &Path) -> (std::collections::BTreeMap<String, Vec<u8>>, Vec<String>) {
    let (mut files, mut dirs) = (std::collections::BTreeMap::new(), Vec::new());
    each_entry(
        root,
        &mut |path, bytes| {
            files.insert(path, bytes);
        },
        &mut |path| dirs.push(path),
    );
    dirs.sort();
    (files, dirs)
}

/// A PostgreSQL server started on a data directory for a test (as the
/// postgres user when running as root), listening on a Unix socket in a
/// scratch directory only; stopped when dropped.
pub struct Server {
    bin: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    stopped: bool,
}

impl Server {
    /// Starts the server of `bin` (its `bin/` directory) on `data`, with
    /// its socket and log in `scratch` (which the postgres user must be
    /// able to reach). `also` are directories the server needs too (a
    /// tablespace), handed to it as `data` is.
    pub fn start(bin: &Path, data: &Path, scratch: &Path, also: &[&Path]) -> Server {
        let socket = scratch.join("socket");
        std::fs::create_dir_all(&socket).unwrap();
        // A log file of its own: a server left with our pipes as its
        // output would keep `run` waiting for them to close.
        let log = scratch.join("server.log");
        std::fs::write(&log, "").unwrap();
        for path in [data, &socket, &log]
            .into_iter()
            .chain(also.iter().copied())
        {
            give_to_postgres(path);
        }
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=off",
            socket.display()
        );
        let started = run(as_postgres(&bin.join("pg_ctl"))
            .args(["start", "-w", "-t", "120", "-D"])
            .arg(data)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options]));
        let server_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(started.code, 0, "{started:?}\n{server_log}");
        Server {
            bin: bin.to_path_buf(),
            data: data.to_path_buf(),
            socket,
            stopped: false,
        }
    }

    /// Runs `sql` in database `db`; its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> Run {
        run(as_postgres(&self.bin.join("psql"))
            .args(["-X", "-At", "-U", "postgres", "-d", db, "-h"])
            .arg(&self.socket)
            .args(["-c", sql]))
    }

    /// Stops it (fast shutdown), checking that it stopped.
    pub fn stop(mut self) {
        let stopped = self.pg_ctl_stop();
        self.stopped = true;
        assert_eq!(stopped.code, 0, "{stopped:?}");
    }

    fn pg_ctl_stop(&self) -> Run {
        run(as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-w", "-m", "fast", "-D"])
            .arg(&self.data))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            self.pg_ctl_stop();
        }
    }
}
