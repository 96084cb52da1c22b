//! The `smgr` command. See `smgr --help`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bufmgr::{BufferPool, PoolConfig};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use smgr_api::{BlockSize, PageFormat, PathNaming, DEFAULT_SEGMENT_BLOCKS};
use smgr_cli::cluster::ClusterFiles;
use smgr_cli::location::{Location, LocationOptions};
use smgr_cli::restore::{restore, RestoreOptions};
use smgr_cli::scan::{scan_one_block, scan_stream, table};
use smgr_cli::upload::{upload, UploadOptions};
use smgr_cli::verify::{verify_location, Progress, VerifyOptions};
use smgr_object::StoreOptions;
use streamread::StreamConfig;

#[derive(Parser)]
#[command(
    name = "smgr",
    version,
    about = "PostgreSQL-layout relations on local disk or in an object store: verify, scan, upload, benchmark",
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to see more."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a relation of checksummed pages in a temporary directory, scan
    /// it with a read stream and one block at a time, verify it, and show a
    /// flipped byte being caught. Needs no server.
    Demo {
        /// Directory to use instead of a temporary one (kept afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Blocks to write (8 KiB each).
        #[arg(long, default_value_t = 32768)]
        blocks: u32,
        /// Blocks per segment file.
        #[arg(long, default_value_t = 16384)]
        segment_blocks: u32,
    },
    /// Check every page of every relation fork with PostgreSQL's checksum,
    /// like `pg_checksums --check`. Exit status: 0 all pages good, 1 bad
    /// pages found, 2 usage errors or files that could not be checked.
    Verify {
        /// A data directory, or an object-store URL holding one
        /// (s3://bucket/prefix, file:///dir).
        #[arg(required_unless_present = "pgdata")]
        location: Option<String>,
        /// The data directory, as pg_checksums takes it.
        #[arg(short = 'D', long, conflicts_with = "location")]
        pgdata: Option<String>,
        /// Only check page headers (a cluster initialized without
        /// --data-checksums). For compressed uploads, see also
        /// --require-frame-checksums.
        #[arg(long)]
        no_checksums: bool,
        /// Also count as bad the pages pg_checksums passes but PostgreSQL's
        /// server would refuse to read (pd_upper zero on a page that is not
        /// all zeros, or an insane header under a matching checksum); by
        /// default they are warnings and the verdict is pg_checksums'.
        /// (With --no-checksums the header check alone decides anyway.)
        #[arg(long)]
        strict: bool,
        /// Streams read at the same time.
        #[arg(long, short = 'j', value_parser = in_range(1, 256))]
        jobs: Option<usize>,
        /// Threads the streams are spread over, each with a buffer pool of
        /// its own (default: one per core; data directories only: an object
        /// store is always read by one).
        #[arg(long, value_parser = in_range(1, 256))]
        threads: Option<usize>,
        /// Largest combined read in KiB (io_combine_limit; default 128
        /// locally, 1024 for object stores).
        #[arg(long, value_parser = in_range(1, 16384))]
        combine_kib: Option<usize>,
        /// Reads in flight per stream (effective_io_concurrency).
        #[arg(long, value_parser = in_range(0, 1024))]
        max_ios: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Scan one relation fork through a read stream and print its
    /// statistics.
    Scan {
        /// A data directory or an object-store URL.
        location: String,
        /// The fork's path in the data directory: base/16384/16397,
        /// base/16384/16397_fsm.
        relation: String,
        /// Read one block at a time instead of through a stream.
        #[arg(long)]
        naive: bool,
        /// Buffer pool size in MiB.
        #[arg(long, default_value_t = 64, value_parser = in_range(1, 1 << 16))]
        pool_mib: usize,
        /// Largest combined read in KiB (io_combine_limit).
        #[arg(long, default_value_t = 128, value_parser = in_range(1, 16384))]
        combine_kib: usize,
        /// Print the statistics as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Copy the whole data directory of a stopped cluster into an object
    /// store (every file and directory, tablespaces under pg_tblspc/OID/,
    /// PostgreSQL's backup_manifest last), to verify, scan and restore it
    /// there.
    Upload {
        /// The data directory.
        pgdata: PathBuf,
        /// Where to: s3://bucket/prefix, file:///dir.
        url: String,
        /// Files uploaded at the same time.
        #[arg(long, short = 'j', default_value_t = 4, value_parser = in_range(1, 256))]
        jobs: usize,
        /// Store segments compressed: `zstd` or `zstd:LEVEL` (1-22; 3 by
        /// default), as zstd seekable objects (`.zst`) that any block run
        /// can still be read from with one ranged GET.
        #[arg(long, value_parser = parse_compression)]
        compress: Option<i32>,
        /// Into a prefix holding a finished upload: only say which files
        /// would go up (new, or changed in size or CRC-32C) and which
        /// objects would be deleted; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a cluster `upload` copied back into an empty directory, byte
    /// for byte: every file checked against the upload's backup_manifest
    /// (size, CRC-32C) and every page's checksum while it is written,
    /// then fsynced. Exit status 0 all good, 1 bad pages, 2 problems.
    Restore {
        /// Where the upload is: s3://bucket/prefix, file:///dir.
        url: String,
        /// The directory to write (empty or missing).
        dir: PathBuf,
        /// Files written at the same time.
        #[arg(long, short = 'j', default_value_t = 4, value_parser = in_range(1, 256))]
        jobs: usize,
        /// Put tablespace OID in DIR (empty or missing) instead of where
        /// it was; may be repeated.
        #[arg(long = "tablespace", value_name = "OID=DIR", value_parser = parse_tablespace)]
        tablespaces: Vec<(String, PathBuf)>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run the side-by-side comparisons of BENCHMARKS.md on generated data
    /// and print one table of ratios.
    Bench {
        /// Directory for the generated data (a temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Size of the generated relation in MiB (16 to 4095).
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..4096))]
        mib: u32,
    },
}

/// A clap parser for a whole number from `low` to `high`, whose error
/// names the range.
fn in_range(low: usize, high: usize) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |text| match text.parse::<usize>() {
        Ok(n) if (low..=high).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {low} to {high}")),
    }
}

/// How the cluster was built.
#[derive(Args, Clone)]
struct ClusterArgs {
    /// Block size (BLCKSZ) [default: 8192]. Must match pg_control's.
    #[arg(long)]
    block_size: Option<u32>,
    /// Blocks per segment file (RELSEG_SIZE) [default: 131072]. Must
    /// match pg_control's.
    #[arg(long)]
    segment_blocks: Option<u32>,
    /// Tablespace version directory [default: from PG_VERSION and the
    /// catalog version in pg_control, else PG_15_202209061].
    #[arg(long)]
    tablespace_version_dir: Option<String>,
}

/// Store settings. Everything `object_store` reads from the environment
/// applies (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT,
/// AWS_ALLOW_HTTP, GOOGLE_SERVICE_ACCOUNT, AZURE_STORAGE_ACCOUNT_NAME, ...);
/// these flags come on top of it.
#[derive(Args, Clone)]
struct StoreArgs {
    /// S3 endpoint for servers other than AWS (a shortcut for
    /// `--store-option aws_endpoint=URL`). A plain http:// endpoint named
    /// here is allowed unless AWS_ALLOW_HTTP says otherwise.
    #[arg(long)]
    endpoint: Option<String>,
    /// S3 region (a shortcut for `--store-option aws_region=NAME`).
    #[arg(long)]
    region: Option<String>,
    /// Any `object_store` configuration key of the store's kind, as
    /// KEY=VALUE (aws_virtual_hosted_style_request=true,
    /// google_service_account=PATH, azure_storage_account_name=NAME, ...);
    /// may be repeated.
    #[arg(long = "store-option", value_name = "KEY=VALUE", value_parser = parse_store_option)]
    store_options: Vec<(String, String)>,
    /// Refuse compressed (.zst) frames that carry no checksum at all, as
    /// other writers may leave them: worth it for clusters without data
    /// checksums, whose pages cannot show such damage themselves.
    #[arg(long)]
    require_frame_checksums: bool,
}

fn parse_tablespace(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((oid, dir))
            if !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit()) && !dir.is_empty() =>
        {
            Ok((oid.to_owned(), PathBuf::from(dir)))
        }
        _ => Err("expected OID=DIR, a tablespace's OID and an absolute directory".into()),
    }
}

fn parse_store_option(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected KEY=VALUE, an object_store configuration key and its value".into()),
    }
}

impl ClusterArgs {
    fn options(&self, store: &StoreArgs) -> smgr_api::Result<LocationOptions> {
        let segment_blocks = self.segment_blocks.unwrap_or(DEFAULT_SEGMENT_BLOCKS);
        let mut options = LocationOptions {
            block_size: BlockSize::new(self.block_size.unwrap_or(8192))?,
            segment_blocks,
            store: store.options(),
            require_frame_checksums: store.require_frame_checksums,
            sizes_given: self.block_size.is_some() || self.segment_blocks.is_some(),
            naming_given: self.tablespace_version_dir.is_some(),
            ..LocationOptions::default()
        };
        if segment_blocks == 0 {
            return Err(smgr_api::Error::InvalidSetting {
                name: "segment_blocks",
                value: 0,
                reason: "a segment holds at least one block",
            });
        }
        if let Some(dir) = &self.tablespace_version_dir {
            options.naming = PathNaming::new(dir.clone())?;
        }
        Ok(options)
    }
}

impl StoreArgs {
    fn options(&self) -> StoreOptions {
        let mut options = StoreOptions::new();
        options.endpoint = self.endpoint.clone();
        options.region = self.region.clone();
        options.options = self.store_options.clone();
        options
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("smgr: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // One line, even when a server's answer inside it has several.
            let text = err.to_string();
            let line: Vec<&str> = text.split_whitespace().collect();
            eprintln!("smgr: {}", line.join(" "));
            ExitCode::from(2)
        }
    }
}

/// `--help`, `--version` and a bare `smgr` print what clap prints; a
/// usage mistake is one line on stderr, like every other error, and exit
/// status 2.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if !err.use_stderr() || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = err.print();
        return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
    }
    let text = err.render().to_string();
    let what: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let what = what.join(" ");
    eprintln!(
        "smgr: {}; see --help",
        what.strip_prefix("error: ").unwrap_or(&what)
    );
    ExitCode::from(2)
}

async fn run(command: Command) -> Result<u8, bufmgr::Error> {
    match command {
        Command::Demo {
            dir,
            blocks,
            segment_blocks,
        } => {
            if blocks == 0 || segment_blocks == 0 {
                eprintln!("smgr demo: --blocks and --segment-blocks must be at least 1");
                return Ok(2);
            }
            let (dir, _temp) = dir_or_temporary(dir)?;
            print!(
                "{}",
                smgr_cli::demo::run_demo(&dir, blocks, segment_blocks).await?
            );
            Ok(0)
        }
        Command::Verify {
            location,
            pgdata,
            no_checksums,
            strict,
            jobs,
            threads,
            combine_kib,
            max_ios,
            json,
            cluster,
            store,
        } => {
            let Some(location) = location.or(pgdata) else {
                eprintln!("smgr verify: give a data directory or URL");
                return Ok(2);
            };
            let location = Location::parse(&location);
            let options = cluster.options(&store)?;
            let mut verify_options = match location {
                Location::Local(_) => VerifyOptions::local(),
                Location::Object(_) => VerifyOptions::object_store(),
            };
            verify_options.checksums = !no_checksums;
            verify_options.strict = strict;
            if let Some(jobs) = jobs {
                verify_options.jobs = jobs.max(1);
            }
            if let Some(threads) = threads {
                if matches!(location, Location::Object(_)) && threads > 1 {
                    // The store's HTTP connections belong to the runtime
                    // that opened them; one runtime serves every stream.
                    eprintln!("smgr: verify --threads applies to data directories only (one thread reads an object store)");
                    return Ok(2);
                }
                verify_options.threads = threads.max(1);
            }
            if let Some(kib) = combine_kib {
                verify_options.stream = verify_options.stream.io_combine_bytes(kib.max(1) << 10);
            }
            if let Some(n) = max_ios {
                verify_options.stream = verify_options.stream.max_ios(n).remote_max_ios(n);
            }
            let progress = Arc::new(Progress::default());
            let bar = show_progress(progress.clone(), !json, "blocks");
            let report = verify_location(&location, &options, verify_options, progress).await;
            finish_progress(bar).await;
            let report = report?;
            if json {
                print_json(&report);
            } else {
                print!("{}", report.to_text());
            }
            Ok(report.exit_code())
        }
        Command::Scan {
            location,
            relation,
            naive,
            pool_mib,
            combine_kib,
            json,
            cluster,
            store,
        } => {
            let location = Location::parse(&location);
            let options = cluster.options(&store)?;
            // As verify does: refuse what pg_checksums refuses (but for
            // checksums off, which the scan honours), and take the
            // tablespace directory from the cluster.
            let files = ClusterFiles::read(&location, &options).await?;
            let options = files.settle(
                &location,
                &options,
                "scan the cluster at",
                |control, settled| {
                    control.refusal(false, settled.block_size.get(), settled.segment_blocks)
                },
            )?;
            files.require_control(&location, &options, "scan the cluster at")?;
            let checksums = files
                .control
                .is_none_or(|control| control.data_checksum_version != 0);
            let seg = options.naming.parse(&relation)?;
            if seg.segno != 0 {
                return Err(smgr_api::Error::InvalidPath {
                    input: relation,
                    reason: "name the fork's first segment, without a .N suffix",
                }
                .into());
            }
            let opened = location.open(&options)?;
            let nblocks = opened.smgr.nblocks(seg.locator, seg.fork).await?;
            let frames = (pool_mib << 20) / options.block_size.bytes();
            let pool = BufferPool::new(
                opened.smgr.clone(),
                PoolConfig::new(frames, PageFormat::Postgres { checksums }),
            )?;
            let outcome = if naive {
                scan_one_block(&pool, seg.locator, seg.fork, nblocks).await
            } else {
                let config = StreamConfig::default().io_combine_bytes(combine_kib << 10);
                scan_stream(&pool, seg.locator, seg.fork, nblocks, config).await
            };
            match outcome {
                Ok(report) if json => print_json(&report),
                Ok(report) => print!("{relation} at {location}\n{}", table(&[report])),
                Err(bufmgr::Error::Storage(err @ smgr_api::Error::CorruptPage { .. })) => {
                    eprintln!("smgr scan: {err}");
                    return Ok(1);
                }
                Err(err) => return Err(err),
            }
            Ok(0)
        }
        Command::Upload {
            pgdata,
            url,
            jobs,
            compress,
            dry_run,
            json,
            cluster,
            store,
        } => {
            let options = cluster.options(&store)?;
            let upload_options = UploadOptions {
                jobs: jobs.max(1),
                compress,
                dry_run,
                ..UploadOptions::default()
            };
            let progress = Arc::new(Progress::default());
            let bar = show_progress(progress.clone(), !json, "bytes");
            let report = upload(&pgdata, &url, &options, upload_options, progress).await;
            finish_progress(bar).await;
            let report = report?;
            if json {
                print_json(&report);
            } else {
                for failed in &report.failed {
                    println!("error: {}: {}", failed.file, failed.message);
                }
                if report.dry_run {
                    for file in &report.to_upload {
                        println!("would upload: {file}");
                    }
                    for gone in &report.deleted {
                        println!("would delete: {gone}");
                    }
                    println!(
                        "dry run: {} files would be uploaded, {} are there already, {} objects would be deleted",
                        report.to_upload.len(),
                        report.unchanged,
                        report.deleted.len()
                    );
                    return Ok(0);
                }
                if report.unchanged > 0 || !report.deleted.is_empty() {
                    println!(
                        "unchanged since the last upload: {} files; deleted: {} objects the cluster no longer has",
                        report.unchanged,
                        report.deleted.len()
                    );
                }
                println!(
                    "uploaded {} files ({} relation segments, {} in parts; {} directories, {} tablespaces), {:.1} MiB stored as {:.1} MiB, in {:.2} s to {url}",
                    report.files,
                    report.relation_files,
                    report.multipart_files,
                    report.directories,
                    report.tablespaces,
                    report.bytes as f64 / (1 << 20) as f64,
                    report.stored_bytes as f64 / (1 << 20) as f64,
                    report.seconds
                );
            }
            Ok(if report.failed.is_empty() { 0 } else { 2 })
        }
        Command::Restore {
            url,
            dir,
            jobs,
            tablespaces,
            json,
            store,
        } => {
            let options = RestoreOptions {
                jobs,
                tablespaces: tablespaces.into_iter().collect(),
            };
            let progress = Arc::new(Progress::default());
            let bar = show_progress(progress.clone(), !json, "bytes");
            let report = restore(&url, &dir, &store.options(), &options, progress).await;
            finish_progress(bar).await;
            let report = report?;
            if json {
                print_json(&report);
            } else {
                for bad in &report.bad_blocks {
                    println!(
                        "checksum verification failed in file \"{}\", block {}: {}",
                        bad.file, bad.block_in_file, bad.detail
                    );
                }
                for problem in &report.problems {
                    println!("error: {}: {}", problem.file, problem.message);
                }
                println!(
                    "restored {} files ({} directories, {} tablespaces), {:.1} MiB, in {:.2} s into {}; {} bad pages, {} problems",
                    report.files,
                    report.directories,
                    report.tablespaces.len(),
                    report.bytes as f64 / (1 << 20) as f64,
                    report.seconds,
                    dir.display(),
                    report.bad_blocks.len(),
                    report.problems.len()
                );
            }
            Ok(report.exit_code())
        }
        Command::Bench { dir, mib } => {
            let (dir, _temp) = dir_or_temporary(dir)?;
            print!("{}", smgr_cli::bench::run_bench(&dir, mib).await?);
            Ok(0)
        }
    }
}

/// `zstd` or `zstd:LEVEL` to a zstd level.
fn parse_compression(text: &str) -> Result<i32, String> {
    let level = match text.split_once(':') {
        None if text == "zstd" => smgr_object::DEFAULT_ZSTD_LEVEL,
        Some(("zstd", level)) => level
            .parse()
            .map_err(|_| format!("zstd level {level:?} is not a number"))?,
        _ => {
            return Err(format!(
                "unknown compression {text:?}: expected zstd or zstd:LEVEL"
            ))
        }
    };
    let levels = smgr_object::ZSTD_LEVELS;
    if !levels.contains(&level) {
        return Err(format!(
            "zstd level {level} is out of range {}..={}",
            levels.start(),
            levels.end()
        ));
    }
    Ok(level)
}

/// `dir`, or a new temporary directory (removed when the guard drops).
fn dir_or_temporary(
    dir: Option<PathBuf>,
) -> smgr_api::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(dir) => Ok((dir, None)),
        None => {
            let temp = tempfile::tempdir()
                .map_err(|e| smgr_api::Error::io("create", "temporary directory", e))?;
            Ok((temp.path().to_path_buf(), Some(temp)))
        }
    }
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("smgr: cannot write JSON: {err}"),
    }
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
fn show_progress(
    progress: Arc<Progress>,
    wanted: bool,
    unit: &'static str,
) -> Option<(ProgressBar, tokio::task::JoinHandle<()>)> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let template = if unit == "bytes" {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{bar:40} {pos}/{len} blocks {per_sec} eta {eta}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let ticking = bar.clone();
    let task = tokio::spawn(async move {
        loop {
            ticking.set_length(progress.total.load(Ordering::Relaxed));
            ticking.set_position(progress.done.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Some((bar, task))
}

async fn finish_progress(bar: Option<(ProgressBar, tokio::task::JoinHandle<()>)>) {
    if let Some((bar, task)) = bar {
        task.abort();
        let _ = task.await;
        bar.finish_and_clear();
    }
}
