//! What a crash test knows: per fork, its blocks now and what a successful
//! `immedsync` confirmed; after a power cut, the check that every
//! confirmed block survived and that everything else is well formed, a
//! clear error, or repairable by `truncate`.

use std::collections::BTreeSet;

use smgr_api::{Error, ForkNumber, RelFileLocator, Smgr, SmgrExt};
use smgr_md::testing::CrashFs;

use super::{open, BS};

const MAIN: ForkNumber = ForkNumber::Main;

/// One fork as the test knows it.
pub struct Fork {
    pub rel: RelFileLocator,
    /// Its blocks now (`None`: it does not exist).
    pub live: Option<Vec<Vec<u8>>>,
    /// What the last successful `immedsync` (or power cut) made durable.
    pub confirmed: Option<Confirmed>,
}

/// Blocks made durable, less what changed since.
pub struct Confirmed {
    pub blocks: Vec<Vec<u8>>,
    /// A truncate since: blocks from here on are no longer promised.
    pub keep: usize,
    /// Blocks written since (old or new bytes, or torn, may survive).
    pub dirty: BTreeSet<usize>,
}

impl Confirmed {
    pub fn new(blocks: Vec<Vec<u8>>) -> Self {
        Confirmed {
            keep: blocks.len(),
            blocks,
            dirty: BTreeSet::new(),
        }
    }

    /// Blocks the fork must still have.
    pub fn len(&self) -> usize {
        self.keep.min(self.blocks.len())
    }
}

impl Fork {
    pub fn new(rel: RelFileLocator) -> Self {
        Fork {
            rel,
            live: None,
            confirmed: None,
        }
    }

    /// Block `block` was written.
    pub fn wrote(&mut self, block: usize, bytes: Vec<u8>) {
        if let Some(live) = &mut self.live {
            if block == live.len() {
                live.push(bytes);
            } else {
                live[block] = bytes;
            }
        }
        if let Some(c) = &mut self.confirmed {
            c.dirty.insert(block);
        }
    }

    /// Cut to `nblocks`.
    pub fn truncated(&mut self, nblocks: usize) {
        if let Some(live) = &mut self.live {
            live.truncate(nblocks);
        }
        if let Some(c) = &mut self.confirmed {
            c.keep = c.keep.min(nblocks);
        }
    }

    /// `immedsync` succeeded.
    pub fn synced(&mut self) {
        self.confirmed = self.live.clone().map(Confirmed::new);
    }
}

/// What the checks after the cuts saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub cuts: u64,
    pub forks_checked: u64,
    pub blocks_checked: u64,
    /// Forks a cut left not well formed, each reported by a clear error.
    pub not_well_formed: u64,
    /// Of those, brought back by `truncate`.
    pub repaired: u64,
    pub changes_kept: u64,
    pub writes_torn: u64,
    pub changes_dropped: u64,
    pub entries_lost: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.cuts += other.cuts;
        self.forks_checked += other.forks_checked;
        self.blocks_checked += other.blocks_checked;
        self.not_well_formed += other.not_well_formed;
        self.repaired += other.repaired;
        self.changes_kept += other.changes_kept;
        self.writes_torn += other.writes_torn;
        self.changes_dropped += other.changes_dropped;
        self.entries_lost += other.entries_lost;
    }
}

/// Cuts the power (`seed` picks what survives), then checks every fork on
/// a fresh backend and takes what survived as the new, durable, state.
pub async fn cut_and_check(
    fs: &CrashFs,
    segment_blocks: u32,
    forks: &mut [Fork],
    seed: u64,
    tally: &mut Tally,
) -> Result<(), String> {
    let cut = fs.power_cut(seed);
    tally.cuts += 1;
    tally.changes_kept += cut.kept;
    tally.writes_torn += cut.torn;
    tally.changes_dropped += cut.dropped;
    tally.entries_lost += cut.entries_lost;
    let smgr = open(fs, segment_blocks);
    for fork in forks.iter_mut() {
        let path = smgr
            .segment_path(fork.rel, MAIN, 0)
            .map_err(|e| e.to_string())?;
        let path = path.strip_prefix(fs.root()).map_err(|e| e.to_string())?;
        let path = path.display().to_string();
        tally.forks_checked += 1;
        let nblocks = match smgr.nblocks(fork.rel, MAIN).await {
            Ok(n) => Some(n as usize),
            Err(Error::NotFound { .. }) => None,
            Err(err) => {
                tally.not_well_formed += 1;
                if !err.to_string().contains(&path) {
                    return Err(format!("{path}: an error that does not name it: {err}"));
                }
                let target = fork.confirmed.as_ref().map_or(0, Confirmed::len);
                smgr.truncate(fork.rel, MAIN, target as u32)
                    .await
                    .map_err(|e| {
                        format!("{path} ({err}): truncate to {target} did not repair it: {e}")
                    })?;
                tally.repaired += 1;
                let n = smgr
                    .nblocks(fork.rel, MAIN)
                    .await
                    .map_err(|e| format!("{path}: still not well formed after truncate: {e}"))?;
                Some(n as usize)
            }
        };
        if let Some(c) = &fork.confirmed {
            let Some(n) = nblocks else {
                return Err(format!(
                    "{path}: immedsync confirmed {} blocks, the fork is gone",
                    c.len()
                ));
            };
            if n < c.len() {
                return Err(format!(
                    "{path}: immedsync confirmed {} blocks, {n} are left",
                    c.len()
                ));
            }
        }
        // Every block reads; confirmed ones as they were.
        let blocks = match nblocks {
            None => None,
            Some(n) => {
                let bytes = smgr
                    .read_to_vec(fork.rel, MAIN, 0, n)
                    .await
                    .map_err(|e| format!("{path}: {n} blocks do not read: {e}"))?;
                Some(bytes.chunks(BS).map(<[u8]>::to_vec).collect::<Vec<_>>())
            }
        };
        if let (Some(c), Some(blocks)) = (&fork.confirmed, &blocks) {
            for block in (0..c.len()).filter(|b| !c.dirty.contains(b)) {
                if blocks[block] != c.blocks[block] {
                    return Err(format!("{path}: confirmed block {block} changed"));
                }
                tally.blocks_checked += 1;
            }
        }
        // What survived a cut is durable. (A repair is not synced yet, but
        // it only cut away blocks past what is promised here.)
        fork.live = blocks;
        fork.synced();
    }
    Ok(())
}

/// splitmix64: the same sequence for a seed everywhere.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs `run` for `seeds` seeds from [`first_seed`] and adds up what each
/// saw; a failure panics naming its seed and how to replay it.
pub async fn run_seeds<F, Fut>(seeds: u64, mut run: F) -> Tally
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<Tally, String>>,
{
    let first = first_seed();
    let mut tally = Tally::default();
    for seed in first..first + seeds {
        match run(seed).await {
            Ok(one) => tally.add(&one),
            Err(err) => panic!("seed {seed} (SMGR_POWER_SEED={seed} replays it): {err}"),
        }
    }
    tally
}

/// Cuts a run should make: `SMGR_POWER_CUTS`, at least 1,000.
pub fn cuts_wanted() -> u64 {
    std::env::var("SMGR_POWER_CUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// The first seed: `SMGR_POWER_SEED` (to replay a failure), else 0.
pub fn first_seed() -> u64 {
    std::env::var("SMGR_POWER_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
