//! A simulated disk that can lose power, for crash tests.
//!
//! A process killed with SIGKILL cannot show durability: the kernel's page
//! cache survives it, so a test would pass even if `immedsync` did
//! nothing. [`CrashFs`] keeps, per file and per directory, what is durable
//! and what is only in the "page cache", as RocksDB's
//! `FaultInjectionTestFS` and CrashMonkey do:
//!
//! - `fsync` of a file makes its data and size durable; `fsync` of a
//!   directory makes its entries durable (new files, new subdirectories,
//!   removals). Nothing else is durable, not even a file's own entry in
//!   its directory.
//! - [`CrashFs::power_cut`] keeps the durable state plus an arbitrary
//!   subset of the writes, size changes and allocations since each file's
//!   last `fsync` (in their order), each write possibly torn at 512-byte or
//!   4 KiB boundaries, and of each directory's changes since its last
//!   `fsync` a prefix (in order, as a journal commits them): the rest is
//!   lost (new files and directories vanish, removed files come back). The
//!   seed chooses, so a failure replays exactly.
//!
//! After a cut, handles opened before it fail; open a new `MdSmgr` on the
//! same `CrashFs` to see what survived.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, IoSlice, IoSliceMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::fs::{FileSystem, OpenMode, SegmentFile};

/// A simulated disk (cheap to clone: clones share it).
#[derive(Clone)]
pub struct CrashFs {
    disk: Arc<Mutex<Disk>>,
    gate: Arc<Gate>,
}

/// Holds writes back while paused (`CrashFs::pause_writes`).
#[derive(Default)]
struct Gate {
    paused: Mutex<bool>,
    resumed: Condvar,
    waiting: AtomicUsize,
}

/// What a power cut kept and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PowerCut {
    /// Changes not yet synced that survived whole.
    pub kept: u64,
    /// Writes that survived in part (torn at sector boundaries).
    pub torn: u64,
    /// Changes not yet synced that were lost.
    pub dropped: u64,
    /// Directory changes (new, removed entries) lost.
    pub entries_lost: u64,
}

struct Disk {
    root: PathBuf,
    /// Bumped by every power cut: handles from before fail.
    generation: u64,
    /// Directories reachable now, by absolute path.
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: HashMap<u64, Inode>,
    next_inode: u64,
}

#[derive(Clone, Default)]
struct Dir {
    live: BTreeMap<String, Node>,
    durable: BTreeMap<String, Node>,
    /// Changes since the last sync (a new entry, or `None`: removed), in
    /// order: a cut keeps a prefix of them, as a file system's journal
    /// commits metadata in order.
    pending: Vec<(String, Option<Node>)>,
}

impl Dir {
    fn insert(&mut self, name: String, node: Node) {
        self.live.insert(name.clone(), node);
        self.pending.push((name, Some(node)));
    }

    fn remove(&mut self, name: &str) {
        self.live.remove(name);
        self.pending.push((name.to_owned(), None));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

#[derive(Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    live: Vec<u8>,
    /// Changes since the last `fsync`, in order.
    pending: Vec<Change>,
}

#[derive(Clone)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
    Allocate { end: u64 },
}

fn write_into(content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[offset as usize..end].copy_from_slice(data);
}

fn lost_power() -> io::Error {
    io::Error::other("the simulated disk lost power since this file was opened")
}

impl Default for CrashFs {
    fn default() -> Self {
        Self::new()
    }
}

impl CrashFs {
    /// An empty disk whose root directory is [`CrashFs::root`].
    pub fn new() -> Self {
        let root = PathBuf::from("/crashfs");
        let mut dirs = BTreeMap::new();
        dirs.insert(root.clone(), Dir::default());
        CrashFs {
            disk: Arc::new(Mutex::new(Disk {
                root,
                generation: 0,
                dirs,
                inodes: HashMap::new(),
                next_inode: 1,
            })),
            gate: Arc::default(),
        }
    }

    /// Holds every write from now on (before it changes anything) until
    /// [`resume_writes`](Self::resume_writes): a write still in flight, as
    /// one slow device makes it.
    pub fn pause_writes(&self) {
        *self.gate.paused.lock().unwrap_or_else(|p| p.into_inner()) = true;
    }

    /// Lets held writes go on.
    pub fn resume_writes(&self) {
        *self.gate.paused.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.gate.resumed.notify_all();
    }

    /// Writes held back right now.
    pub fn writes_held(&self) -> usize {
        self.gate.waiting.load(Ordering::SeqCst)
    }

    fn wait_if_paused(&self) {
        let mut paused = self.gate.paused.lock().unwrap_or_else(|p| p.into_inner());
        if *paused {
            self.gate.waiting.fetch_add(1, Ordering::SeqCst);
            while *paused {
                paused = self
                    .gate
                    .resumed
                    .wait(paused)
                    .unwrap_or_else(|p| p.into_inner());
            }
            self.gate.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The root directory (it survives every cut).
    pub fn root(&self) -> PathBuf {
        self.disk().root.clone()
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cuts the power: what was durable stays, plus what `seed` picks of
    /// the rest (see the module docs).
    pub fn power_cut(&self, seed: u64) -> PowerCut {
        let mut rng = Rng(seed);
        let mut disk = self.disk();
        let mut report = PowerCut::default();
        disk.generation += 1;
        let sector: u64 = if rng.below(2) == 0 { 512 } else { 4096 };
        let mut inodes: Vec<_> = disk.inodes.keys().copied().collect();
        inodes.sort_unstable();
        for ino in inodes {
            let Some(inode) = disk.inodes.get_mut(&ino) else {
                continue;
            };
            let mut content = std::mem::take(&mut inode.durable);
            for change in inode.pending.drain(..) {
                let choice = rng.below(4);
                match change {
                    Change::Write { offset, data } => match choice {
                        0 => report.dropped += 1,
                        1 => {
                            write_into(&mut content, offset, &data);
                            report.kept += 1;
                        }
                        _ => {
                            // Torn: each sector the write touches, or not.
                            let end = offset + data.len() as u64;
                            let mut at = offset;
                            while at < end {
                                let next = ((at / sector + 1) * sector).min(end);
                                if rng.below(2) == 0 {
                                    let part =
                                        &data[(at - offset) as usize..(next - offset) as usize];
                                    write_into(&mut content, at, part);
                                }
                                at = next;
                            }
                            report.torn += 1;
                        }
                    },
                    Change::SetLen(len) if choice < 2 => {
                        content.resize(len as usize, 0);
                        report.kept += 1;
                    }
                    Change::Allocate { end } if choice < 2 => {
                        if (content.len() as u64) < end {
                            content.resize(end as usize, 0);
                        }
                        report.kept += 1;
                    }
                    Change::SetLen(_) | Change::Allocate { .. } => report.dropped += 1,
                }
            }
            inode.live = content.clone();
            inode.durable = content;
        }
        // Directories: durable entries and a prefix of the changes since,
        // from the root down (a directory whose own entry did not survive
        // goes with everything in it).
        let root = disk.root.clone();
        let mut survivors = BTreeMap::new();
        let mut queue = vec![root];
        while let Some(path) = queue.pop() {
            let Some(dir) = disk.dirs.get(&path) else {
                continue;
            };
            let kept = rng.below(dir.pending.len() as u64 + 1) as usize;
            report.entries_lost += (dir.pending.len() - kept) as u64;
            let mut entries = dir.durable.clone();
            for (name, change) in &dir.pending[..kept] {
                match change {
                    Some(node) => entries.insert(name.clone(), *node),
                    None => entries.remove(name),
                };
            }
            for (name, node) in &entries {
                if *node == Node::Dir {
                    queue.push(path.join(name));
                }
            }
            survivors.insert(
                path,
                Dir {
                    live: entries.clone(),
                    durable: entries,
                    pending: Vec::new(),
                },
            );
        }
        let reachable: std::collections::HashSet<u64> = survivors
            .values()
            .flat_map(|dir| dir.durable.values())
            .filter_map(|node| match node {
                Node::File(ino) => Some(*ino),
                Node::Dir => None,
            })
            .collect();
        disk.inodes.retain(|ino, _| reachable.contains(ino));
        disk.dirs = survivors;
        report
    }

    /// An independent copy of the disk as it is now (open handles stay
    /// with this one): one workload, then many different cuts.
    pub fn duplicate(&self) -> CrashFs {
        let disk = self.disk();
        CrashFs {
            disk: Arc::new(Mutex::new(Disk {
                root: disk.root.clone(),
                generation: disk.generation,
                dirs: disk.dirs.clone(),
                inodes: disk.inodes.clone(),
                next_inode: disk.next_inode,
            })),
            gate: Arc::default(),
        }
    }

    /// The bytes of the file at `path` now (`None`: no such file).
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let disk = self.disk();
        let ino = disk.entry(path)?;
        match ino {
            Node::File(ino) => disk.inodes.get(&ino).map(|inode| inode.live.clone()),
            Node::Dir => None,
        }
    }
}

impl Disk {
    fn split(path: &Path) -> io::Result<(&Path, String)> {
        match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
            (Some(parent), Some(name)) => Ok((parent, name.to_owned())),
            _ => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    fn entry(&self, path: &Path) -> Option<Node> {
        if path == self.root {
            return Some(Node::Dir);
        }
        let (parent, name) = Self::split(path).ok()?;
        self.dirs.get(parent)?.live.get(&name).copied()
    }

    fn dir_mut(&mut self, path: &Path) -> io::Result<&mut Dir> {
        self.dirs
            .get_mut(path)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
}

impl FileSystem for CrashFs {
    type File = CrashFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<CrashFile> {
        let mut disk = self.disk();
        let generation = disk.generation;
        let (parent, name) = Disk::split(path)?;
        let ino = match disk.dir_mut(parent)?.live.get(&name).copied() {
            Some(Node::Dir) => return Err(io::Error::other("is a directory")),
            Some(Node::File(_)) if mode.create_new => {
                return Err(io::ErrorKind::AlreadyExists.into())
            }
            Some(Node::File(ino)) => ino,
            None if mode.create || mode.create_new => {
                let ino = disk.next_inode;
                disk.next_inode += 1;
                disk.inodes.insert(ino, Inode::default());
                disk.dir_mut(parent)?.insert(name, Node::File(ino));
                ino
            }
            None => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(CrashFile {
            fs: self.clone(),
            ino,
            generation,
            write: mode.write,
        })
    }

    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        let disk = self.disk();
        Ok(match disk.entry(path) {
            Some(Node::File(ino)) => disk.inodes.get(&ino).map(|i| i.live.len() as u64),
            // A directory's size, as ext4 reports it.
            Some(Node::Dir) => Some(4096),
            None => None,
        })
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.disk().entry(path).is_some())
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.disk().dirs.contains_key(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        let (parent, name) = Disk::split(path)?;
        let dir = disk.dir_mut(parent)?;
        if dir.live.contains_key(&name) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        dir.insert(name, Node::Dir);
        disk.dirs.insert(path.to_path_buf(), Dir::default());
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        let (parent, name) = Disk::split(path)?;
        let dir = disk.dir_mut(parent)?;
        match dir.live.get(&name) {
            Some(Node::File(_)) => {
                dir.remove(&name);
                Ok(())
            }
            Some(Node::Dir) => Err(io::Error::other("is a directory")),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut disk = self.disk();
        Ok(disk.dir_mut(path)?.live.keys().cloned().collect())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        let dir = disk.dir_mut(path)?;
        dir.durable = dir.live.clone();
        dir.pending.clear();
        Ok(())
    }
}

/// An open file of a [`CrashFs`].
pub struct CrashFile {
    fs: CrashFs,
    ino: u64,
    generation: u64,
    write: bool,
}

impl CrashFile {
    /// The file's inode, if the disk has not lost power since it opened.
    fn with<T>(&self, op: impl FnOnce(&mut Inode) -> io::Result<T>) -> io::Result<T> {
        let mut disk = self.fs.disk();
        if disk.generation != self.generation {
            return Err(lost_power());
        }
        match disk.inodes.get_mut(&self.ino) {
            Some(inode) => op(inode),
            None => Err(lost_power()),
        }
    }

    fn writable(&self) -> io::Result<()> {
        if self.write {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        }
    }
}

impl SegmentFile for CrashFile {
    fn size(&self) -> io::Result<u64> {
        self.with(|inode| Ok(inode.live.len() as u64))
    }

    fn read_at(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        offset: u64,
        _nowait: bool,
    ) -> io::Result<usize> {
        self.with(|inode| {
            let mut at = offset as usize;
            let mut read = 0;
            for buf in bufs.iter_mut() {
                if at >= inode.live.len() {
                    break;
                }
                let n = buf.len().min(inode.live.len() - at);
                buf[..n].copy_from_slice(&inode.live[at..at + n]);
                at += n;
                read += n;
                if n < buf.len() {
                    break;
                }
            }
            Ok(read)
        })
    }

    fn write_at(&self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<usize> {
        self.writable()?;
        self.fs.wait_if_paused();
        let data: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        self.with(|inode| {
            write_into(&mut inode.live, offset, &data);
            let n = data.len();
            inode.pending.push(Change::Write { offset, data });
            Ok(n)
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.writable()?;
        self.with(|inode| {
            inode.live.resize(len as usize, 0);
            inode.pending.push(Change::SetLen(len));
            Ok(())
        })
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.writable()?;
        self.with(|inode| {
            let end = offset + len;
            if (inode.live.len() as u64) < end {
                inode.live.resize(end as usize, 0);
            }
            inode.pending.push(Change::Allocate { end });
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|inode| {
            inode.durable = inode.live.clone();
            inode.pending.clear();
            Ok(())
        })
    }

    fn will_need(&self, _offset: u64, _len: u64) -> bool {
        true
    }
}

/// splitmix64: small, and the same sequence for a seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITE: OpenMode = OpenMode {
        write: true,
        create: true,
        create_new: false,
    };

    #[test]
    fn synced_survives_unsynced_entries_vanish() {
        let fs = CrashFs::new();
        let root = fs.root();
        fs.create_dir(&root.join("d")).unwrap();
        fs.sync_dir(&root).unwrap();
        let path = root.join("d/f");
        let file = fs.open(&path, WRITE).unwrap();
        file.write_at(&[IoSlice::new(&[7u8; 4096])], 0).unwrap();
        file.sync().unwrap();
        // The file's data is durable, its entry is not: some cuts keep
        // it, some lose it.
        let kept: Vec<bool> = (0..16)
            .map(|seed| {
                let disk = fs.duplicate();
                disk.power_cut(seed);
                assert!(disk.is_dir(&root.join("d")));
                disk.contents(&path).is_some()
            })
            .collect();
        assert!(kept.contains(&true) && kept.contains(&false), "{kept:?}");
        while fs.contents(&path).is_some() {
            fs.power_cut(kept.len() as u64);
        }
        let file = fs.open(&path, WRITE).unwrap();
        file.write_at(&[IoSlice::new(&[7u8; 4096])], 0).unwrap();
        file.sync().unwrap();
        fs.sync_dir(&root.join("d")).unwrap();
        file.write_at(&[IoSlice::new(&[9u8; 4096])], 4096).unwrap();
        for seed in 0..32 {
            let copy = fs.duplicate();
            copy.power_cut(seed);
            let bytes = copy.contents(&path).unwrap();
            assert_eq!(&bytes[..4096], &[7u8; 4096][..], "seed {seed}");
        }
        // Handles opened before a cut are dead after it.
        assert!(file.size().is_ok());
        fs.power_cut(0);
        assert!(file.size().is_err());
    }

    #[test]
    fn unsynced_writes_survive_in_part_torn_at_sectors() {
        let mut seen_torn = false;
        for seed in 0..64 {
            let fs = CrashFs::new();
            let path = fs.root().join("f");
            let file = fs.open(&path, WRITE).unwrap();
            file.write_at(&[IoSlice::new(&[0u8; 8192])], 0).unwrap();
            file.sync().unwrap();
            fs.sync_dir(&fs.root()).unwrap();
            file.write_at(&[IoSlice::new(&[1u8; 8192])], 0).unwrap();
            let cut = fs.power_cut(seed);
            let bytes = fs.contents(&path).unwrap();
            assert_eq!(bytes.len(), 8192);
            // Whole sectors of old or new bytes, nothing else.
            for sector in bytes.chunks(512) {
                assert!(sector.iter().all(|b| *b == sector[0]), "seed {seed}");
            }
            if cut.torn == 1 && bytes.contains(&0) && bytes.contains(&1) {
                seen_torn = true;
            }
        }
        assert!(seen_torn, "no seed tore the write");
    }
}
