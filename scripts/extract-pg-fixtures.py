#!/usr/bin/env python3
"""Copy real PostgreSQL 15 pages out of the cluster built by scripts/pg-cluster.sh.

Usage: scripts/extract-pg-fixtures.py [CLUSTER_DIR] [OUT_DIR]
  CLUSTER_DIR  default: <repo>/target/pg15-scale100  (must contain READY)
  OUT_DIR      default: <repo>/smgr-api/tests/fixtures/pg15

Each page is copied byte for byte into OUT_DIR/NAME.page (8192 bytes), and
OUT_DIR/MANIFEST.tsv records where it came from together with fields read from
its header. The pd_checksum values are the ones PostgreSQL itself wrote; this
script never computes a checksum. OUT_DIR/README.md is regenerated as well.

Standard library only.
"""

import os
import struct
import subprocess
import sys

BLCKSZ = 8192
RELSEG_BLOCKS = 131072  # 1 GiB segments / 8 KiB blocks
PGBIN = "/usr/lib/postgresql/15/bin"
BTP_LEAF = 1 << 0

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_manifest(cluster):
    out = {}
    with open(os.path.join(cluster, "MANIFEST")) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                name, value = line.split("\t")
                out[name] = value
    return out


def read_block(data_dir, relpath, block_in_file):
    path = os.path.join(data_dir, relpath)
    with open(path, "rb") as f:
        f.seek(block_in_file * BLCKSZ)
        page = f.read(BLCKSZ)
    if len(page) != BLCKSZ:
        raise SystemExit(f"{relpath}: block {block_in_file} is not a full page")
    return page


def header(page):
    # PageHeaderData: pd_lsn (8), pd_checksum u16 @8, pd_flags @10,
    # pd_lower @12, pd_upper @14, pd_special @16, pd_pagesize_version @18.
    checksum, flags, lower, upper, special, size_version = struct.unpack_from("<6H", page, 8)
    return checksum, flags, lower, upper, special, size_version


def segment_of(relpath):
    """'base/1/2.1' -> 1, 'base/1/2' -> 0, 'base/1/2_fsm' -> 0."""
    last = relpath.rsplit("/", 1)[-1]
    return int(last.split(".", 1)[1]) if "." in last else 0


def main():
    cluster = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target", "pg15-scale100"))
    out_dir = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "smgr-api", "tests", "fixtures", "pg15"))
    if not os.path.exists(os.path.join(cluster, "READY")):
        raise SystemExit(f"{cluster}/READY missing: run scripts/pg-cluster.sh first")
    data_dir = os.path.join(cluster, "data")
    m = read_manifest(cluster)
    accounts = m["pgbench_accounts"]

    # (name, relpath of the segment file, block within that file)
    wanted = [("accounts_blk0", accounts, 0)]
    seg1 = accounts + ".1"
    seg1_path = os.path.join(data_dir, seg1)
    if not os.path.exists(seg1_path):
        raise SystemExit(f"{seg1} missing: pgbench_accounts has one segment only (scale too small)")
    seg1_blocks = os.path.getsize(seg1_path) // BLCKSZ
    wanted.append(("accounts_seg1_blk0", seg1, 0))
    wanted.append(("accounts_seg1_last", seg1, seg1_blocks - 1))
    if "pgbench_accounts_pkey" in m:
        wanted.append(("accounts_pkey_blk1", m["pgbench_accounts_pkey"], 1))
    for fork in ("fsm", "vm"):
        if os.path.exists(os.path.join(data_dir, f"{accounts}_{fork}")):
            wanted.append((f"accounts_{fork}_blk0", f"{accounts}_{fork}", 0))
    wanted.append(("pg_database_blk0", m["pg_database"], 0))
    wanted.append(("pg_class_blk0", m["pg_class"], 0))
    wanted.append(("branches_blk0", m["pgbench_branches"], 0))

    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for name, relpath, blk in wanted:
        page = read_block(data_dir, relpath, blk)
        checksum, _flags, lower, upper, special, size_version = header(page)
        if size_version != (BLCKSZ | 4):
            raise SystemExit(f"{name}: pd_pagesize_version {size_version:#x}, expected 0x2004")
        if checksum == 0:
            raise SystemExit(f"{name}: pd_checksum is 0 (cluster without data checksums?)")
        if name == "accounts_pkey_blk1":
            # BTPageOpaqueData at pd_special: prev u32, next u32, level u32, flags u16, cycleid u16
            bt_flags = struct.unpack_from("<H", page, special + 12)[0]
            if not bt_flags & BTP_LEAF:
                raise SystemExit(f"{name}: btree block 1 is not a leaf (btpo_flags={bt_flags:#x})")
        absolute = segment_of(relpath) * RELSEG_BLOCKS + blk
        with open(os.path.join(out_dir, name + ".page"), "wb") as f:
            f.write(page)
        rows.append((name, relpath, blk, absolute, f"0x{checksum:04x}", lower, upper, special))

    with open(os.path.join(out_dir, "MANIFEST.tsv"), "w") as f:
        f.write("\t".join(["name", "relpath_of_segment_file", "block_in_file", "absolute_block",
                           "pd_checksum_hex", "pd_lower", "pd_upper", "pd_special"]) + "\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")

    version = subprocess.run([os.path.join(PGBIN, "postgres"), "--version"],
                             check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write(README.format(version=version, n=len(rows)))

    for r in rows:
        print("\t".join(str(x) for x in r))


README = """\
# Real PostgreSQL 15 pages

Every `NAME.page` file here is one 8192-byte block copied byte for byte out of
a PostgreSQL data directory. Nothing in this repository produced or modified
their contents: the `pd_checksum` values listed in `MANIFEST.tsv` were written
by PostgreSQL itself, so they are an independent oracle for our checksum code.

## How they were produced

1. `scripts/pg-cluster.sh` (defaults: `target/pg15-scale100`, scale 100) on
   `{version}` (Debian package `postgresql-15`, binaries in
   `/usr/lib/postgresql/15/bin`, default build: BLCKSZ 8192, 1 GiB segments):
   - `initdb -D DIR/data --data-checksums -U postgres --auth=trust --locale=C --encoding=UTF8`
   - server started by `pg_ctl` with no TCP listener, a private socket
     directory, `fsync=off`, `full_page_writes=off`, `wal_level=minimal`,
     `autovacuum=off`
   - `CREATE DATABASE bench`
   - `pgbench -i -s 100 -I dtG bench` (server-side data generation)
   - `pgbench -i -s 100 -I p bench` (primary keys, so `pgbench_accounts_pkey` exists)
   - `VACUUM ANALYZE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history`
     (creates the `_fsm` and `_vm` forks)
   - relation paths taken with `pg_relation_filepath()`, then `CHECKPOINT`,
     `pg_ctl stop -m fast`
   - `pg_checksums --check -D DIR/data` must report `Bad checksums: 0`
     (the script fails otherwise).
2. `scripts/extract-pg-fixtures.py` copied the {n} blocks listed in
   `MANIFEST.tsv` and read their header fields.

## MANIFEST.tsv columns

- `name`: the page is `name.page`
- `relpath_of_segment_file`: file relative to the data directory it came from
  (`REL` is segment 0, `REL.1` segment 1, `REL_fsm` / `REL_vm` other forks)
- `block_in_file`: block number inside that segment file
- `absolute_block`: `segno * 131072 + block_in_file`, the block number within
  the relation fork; this, not `block_in_file`, is what PostgreSQL feeds into
  the checksum
- `pd_checksum_hex`: little-endian u16 at byte offset 8 of the page, as stored
- `pd_lower`, `pd_upper`, `pd_special`: u16 at offsets 12, 14, 16

OIDs/relfilenodes (`base/16384/16397` etc.) and page contents such as xmin
and LSNs depend on the run; regenerating can give different bytes and
checksums, but each row is self-consistent with its page file.
"""

if __name__ == "__main__":
    main()
