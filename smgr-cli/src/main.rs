//! The `smgr` command. See `smgr --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use smgr_api::{BlockSize, PageFormat, PageVerifier, PathNaming, DEFAULT_SEGMENT_BLOCKS};
use smgr_cli::verify::{verify_forks, VerifyOptions};
use smgr_md::{MdOptions, MdSmgr};

#[derive(Parser)]
#[command(
    name = "smgr",
    version,
    about = "Storage manager tool: PostgreSQL-layout relations on local disk"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a relation, read it back with every page verified, then show a
    /// flipped byte being caught. Uses a temporary directory unless --dir.
    Demo {
        /// Directory to use instead of a temporary one (kept afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Blocks to write.
        #[arg(long, default_value_t = 4096)]
        blocks: u32,
        /// Blocks per segment file (small, so the demo makes several).
        #[arg(long, default_value_t = 1024)]
        segment_blocks: u32,
    },
    /// Read every block of every relation in a PostgreSQL data directory and
    /// verify each page (like `pg_checksums --check`). Exits 1 if any page
    /// is bad.
    Verify {
        /// The data directory (PGDATA).
        #[arg(long, short = 'D')]
        pgdata: PathBuf,
        /// Only check page headers (a cluster initialized without
        /// --data-checksums).
        #[arg(long)]
        no_checksums: bool,
        /// Block size of the cluster.
        #[arg(long, default_value_t = 8192)]
        block_size: u32,
        /// Blocks per segment file (RELSEG_SIZE).
        #[arg(long, default_value_t = DEFAULT_SEGMENT_BLOCKS)]
        segment_blocks: u32,
        /// Tablespace version directory (PG_15_202209061 for PostgreSQL 15).
        #[arg(long)]
        tablespace_version_dir: Option<String>,
        /// Chunks verified at the same time.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("smgr: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("smgr: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> smgr_api::Result<ExitCode> {
    match command {
        Command::Demo {
            dir,
            blocks,
            segment_blocks,
        } => {
            if blocks == 0 || segment_blocks == 0 {
                eprintln!("smgr demo: --blocks and --segment-blocks must be at least 1");
                return Ok(ExitCode::from(2));
            }
            let temp;
            let dir = match dir {
                Some(dir) => dir,
                None => {
                    temp = tempfile::tempdir()
                        .map_err(|e| smgr_api::Error::io("create", "temporary directory", e))?;
                    temp.path().to_path_buf()
                }
            };
            print!(
                "{}",
                smgr_cli::demo::run_demo(&dir, blocks, segment_blocks).await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            pgdata,
            no_checksums,
            block_size,
            segment_blocks,
            tablespace_version_dir,
            jobs,
        } => {
            let block_size = BlockSize::new(block_size)?;
            let mut options = MdOptions::new(block_size, segment_blocks).read_only();
            if let Some(dir) = tablespace_version_dir {
                options = options.naming(PathNaming::new(dir)?);
            }
            let smgr = MdSmgr::open(&pgdata, options)?;
            let started = Instant::now();
            let forks = smgr.list_forks().await?;
            let verifier = PageVerifier::new(
                PageFormat::Postgres {
                    checksums: !no_checksums,
                },
                block_size,
            );
            let verify_options = VerifyOptions {
                jobs,
                ..VerifyOptions::default()
            };
            let naming = smgr.options().naming.clone();
            let report =
                verify_forks(Arc::new(smgr), &naming, &forks, verifier, verify_options).await?;
            for failure in &report.failures {
                println!("{failure}");
            }
            println!("Forks scanned:   {}", report.forks);
            println!("Blocks scanned:  {}", report.blocks);
            println!("New (all-zero):  {}", report.new_pages);
            println!("Bad pages:       {}", report.failures.len());
            println!("Time:            {:.3} s", started.elapsed().as_secs_f64());
            Ok(if report.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
