"""The WAL oracle: expected pages at any LSN, from block images in the WAL.

With wal_consistency_checking = all, every record of an rmgr with a mask
function carries, for every block it touches, an image of the page as it is
after the change.  So the page of a block at LSN L is (up to the record's
mask) the image of the latest record with end LSN <= L that carried one,
unless the relation has since been dropped or the block truncated away.

    state = WalState()
    for rec in pgwal.iter_records(wal_dir, start):
        state.apply(rec)
    snap = state.snapshot()

or, for many target LSNs in one pass over the WAL:

    snaps = build_snapshots(pgwal.iter_records(wal_dir, start), [l1, l2])

A Snapshot holds, for every (spc, db, rel, fork, blkno) that has an image,
an ExpectedPage (its image, the rmgr of its record, LSNs, and whether it is
exact: no later record touched the block without an image), plus the
WAL-derived size of every relation fork.

What it also does, so that its pages are the pages redo would produce:
* relation drops: COMMIT / ABORT (and the _PREPARED forms) relfilenode
  lists, DATABASE DROP;
* Storage TRUNCATE of the main fork, the visibility map (with the tail edit
  of the last kept VM page that redo makes without a block ref) and the FSM
  (its sizes only; the FSM tail edit is not reproduced, that block is marked
  inexact);
* CREATE DATABASE ... STRATEGY FILE_COPY: the new database gets a copy of
  every block of the source database (the files are copied without page
  WAL);
* the visibility-map bits that heap records clear without a block ref
  (INSERT/DELETE/UPDATE/MULTI_INSERT all-visible cleared, LOCK /
  LOCK_UPDATED all-frozen cleared), applied to the last VM image.
"""
import struct

import pgmask
import pgwal
from pgwal import (BLCKSZ, FSM_FORKNUM, MAIN_FORKNUM, RM_DBASE_ID,
                   RM_HEAP2_ID, RM_HEAP_ID, RM_SMGR_ID, RM_XACT_ID, RM_XLOG_ID,
                   VISIBILITYMAP_FORKNUM)

# Visibility map geometry (visibilitymap.c).
VM_MAPSIZE = BLCKSZ - 24
VM_HEAPBLOCKS_PER_BYTE = 4
VM_HEAPBLOCKS_PER_PAGE = VM_MAPSIZE * VM_HEAPBLOCKS_PER_BYTE      # 32672
VISIBILITYMAP_ALL_VISIBLE = 0x01
VISIBILITYMAP_ALL_FROZEN = 0x02
VISIBILITYMAP_VALID_BITS = 0x03

# FSM geometry (fsm_internals.h, freespace.c).
FSM_NODES_PER_PAGE = BLCKSZ - 24 - 4
FSM_NON_LEAF_NODES_PER_PAGE = BLCKSZ // 2 - 1
FSM_SLOTS_PER_PAGE = FSM_NODES_PER_PAGE - FSM_NON_LEAF_NODES_PER_PAGE  # 4069
FSM_TREE_DEPTH = 3 if FSM_SLOTS_PER_PAGE >= 1626 else 4



def fsm_logical_to_physical(logpageno, level=0):
    leafno = logpageno
    for _ in range(level):
        leafno *= FSM_SLOTS_PER_PAGE
    pages = 0
    for _ in range(FSM_TREE_DEPTH):
        pages += leafno + 1
        leafno //= FSM_SLOTS_PER_PAGE
    pages -= level
    return pages - 1


def page_init(special_size=0):
    """PageInit(page, BLCKSZ, special_size) of a zeroed page."""
    p = bytearray(BLCKSZ)
    special = BLCKSZ - ((special_size + 7) & ~7)
    struct.pack_into("<HHHH", p, 12, 24, special, special, BLCKSZ | 4)
    return p


class ExpectedPage:
    """The latest image of one block.

    rmid/info/lsn/end: the record that carried the image; apply: it was a
    real full-page write (BKPIMAGE_APPLY) rather than a verification image;
    exact: no later record touched the block without an image (and no
    unreproduced side effect changed it); edited: walstate changed it
    after the record (VM bits cleared, VM truncation tail); last_touch: end
    LSN of the latest record that touched the block; source: None, or the
    (spc, db) it was copied from by CREATE DATABASE ... FILE_COPY.
    """
    __slots__ = ("raw", "hole_offset", "hole_length", "bimg_info", "rmid",
                 "info", "lsn", "end", "apply", "exact", "edited",
                 "last_touch", "source")

    def copy(self, **changes):
        n = ExpectedPage()
        for k in self.__slots__:
            setattr(n, k, getattr(self, k))
        for k, v in changes.items():
            setattr(n, k, v)
        return n

    @property
    def supported(self):
        return self.raw is not None and pgwal.image_supported(self.bimg_info)

    def image(self):
        """The page as logged (pd_lsn still from before the record)."""
        return pgwal.restore_image(self.raw, self.hole_offset,
                                   self.hole_length, self.bimg_info)

    def page(self, set_lsn=True):
        """The page redo would leave: the image with pd_lsn = the record's
        end LSN (unless the page is new or @set_lsn is false)."""
        img = self.image()
        if not set_lsn or pgmask.is_new_page(img):
            return img
        p = bytearray(img)
        struct.pack_into("<II", p, 0, self.end >> 32, self.end & 0xFFFFFFFF)
        return bytes(p)

    def mask(self):
        return pgmask.mask_for_rmgr(self.rmid)

    def masked(self, blkno, am=None):
        """The page masked with its record's rmgr mask (for XLOG images:
        the mask of @am when given, else LSN and checksum only)."""
        return pgmask.mask_for_rmgr(self.rmid, am)(self.page(), blkno)

    def __repr__(self):
        return (f"<image {pgwal.rmgr_name(self.rmid)} info={self.info:#x} "
                f"lsn={pgwal.lsn_str(self.lsn)} apply={int(self.apply)} "
                f"exact={int(self.exact)} edited={int(self.edited)}>")


class _Fork:
    __slots__ = ("size", "blocks")

    def __init__(self):
        self.size = 0
        self.blocks = {}


class Snapshot:
    """The oracle's answer at one LSN.

    lsn: the target; blocks: {(spc, db, rel, fork, blkno): ExpectedPage};
    sizes: {(spc, db, rel, fork): WAL-derived number of blocks};
    relations: set of (spc, db, rel) that exist (have at least one fork).
    """

    def __init__(self, lsn, blocks, sizes):
        self.lsn = lsn
        self.blocks = blocks
        self.sizes = sizes
        self.relations = {k[:3] for k in sizes}

    def get(self, key):
        return self.blocks.get(tuple(key))

    def page(self, key):
        e = self.blocks.get(tuple(key))
        return e.page() if e else None

    def size(self, spc, db, rel, fork=MAIN_FORKNUM):
        return self.sizes.get((spc, db, rel, fork))

    def blocks_of(self, spc, db, rel, fork=MAIN_FORKNUM):
        """{blkno: ExpectedPage} of one relation fork."""
        return {k[4]: v for k, v in self.blocks.items()
                if k[:4] == (spc, db, rel, fork)}


class WalState:
    """Streams records and keeps the latest image of every block.

    Options: clone_file_copy (copy the source database's blocks on CREATE
    DATABASE ... FILE_COPY), track_vm (apply the VM bit clears heap records
    imply).  Counters in .stats.
    """

    def __init__(self, clone_file_copy=True, track_vm=True):
        self.clone_file_copy = clone_file_copy
        self.track_vm = track_vm
        self.rels = {}          # (spc, db, rel) -> {fork: _Fork}
        self.lsn = 0            # end LSN of the last record applied
        self.checkpoints = []   # (lsn, end, parsed CheckPoint)
        self.stats = {"records": 0, "images": 0, "unsupported_images": 0,
                      "touched_without_image": 0, "drops": 0,
                      "truncates": 0, "db_drops": 0, "db_file_copies": 0,
                      "vm_clears": 0, "vm_truncate_edits": 0}

    # -- helpers -------------------------------------------------------------
    def _fork(self, rnode, fork, create=True):
        forks = self.rels.get(rnode)
        if forks is None:
            if not create:
                return None
            forks = self.rels[rnode] = {}
        f = forks.get(fork)
        if f is None and create:
            f = forks[fork] = _Fork()
        return f

    def _drop_rel(self, rnode):
        if self.rels.pop(rnode, None) is not None:
            self.stats["drops"] += 1

    def _cut(self, f, nblocks):
        """Truncate fork @f to @nblocks."""
        if f.size > nblocks:
            f.size = nblocks
        for b in [b for b in f.blocks if b >= nblocks]:
            del f.blocks[b]

    # -- records -------------------------------------------------------------
    def apply(self, rec):
        """Take one pgwal.Record (records must come in WAL order)."""
        self.stats["records"] += 1
        end = rec.end
        for b in rec.blocks:
            f = self._fork((b.spc, b.db, b.rel), b.fork)
            if b.blkno >= f.size:
                f.size = b.blkno + 1
            if b.has_image:
                e = ExpectedPage()
                e.raw = b.raw_image
                e.hole_offset = b.hole_offset
                e.hole_length = b.hole_length
                e.bimg_info = b.bimg_info
                e.rmid = rec.rmid
                e.info = rec.info
                e.lsn = rec.lsn
                e.end = end
                e.apply = b.apply_image
                e.edited = False
                e.last_touch = end
                e.source = None
                if pgwal.image_supported(b.bimg_info):
                    e.exact = True
                    self.stats["images"] += 1
                else:
                    e.raw = None
                    e.exact = False
                    self.stats["unsupported_images"] += 1
                f.blocks[b.blkno] = e
            else:
                self.stats["touched_without_image"] += 1
                old = f.blocks.get(b.blkno)
                if old is not None:
                    f.blocks[b.blkno] = old.copy(exact=False,
                                                 last_touch=end)
        rmid = rec.rmid
        if rmid == RM_HEAP_ID or rmid == RM_HEAP2_ID:
            if self.track_vm and rec.main_data:
                self._heap_vm_clears(rec)
        elif rmid == RM_XACT_ID:
            self._xact(rec)
        elif rmid == RM_SMGR_ID:
            self._smgr(rec)
        elif rmid == RM_DBASE_ID:
            self._dbase(rec)
        elif rmid == RM_XLOG_ID:
            t = rec.info & 0xF0
            if t in (pgwal.XLOG_CHECKPOINT_SHUTDOWN,
                     pgwal.XLOG_CHECKPOINT_ONLINE):
                self.checkpoints.append(
                    (rec.lsn, end, pgwal.parse_checkpoint(rec.main_data)))
        self.lsn = end

    def _xact(self, rec):
        kind = rec.info & pgwal.XLOG_XACT_OPMASK
        if kind not in (pgwal.XLOG_XACT_COMMIT, pgwal.XLOG_XACT_ABORT,
                        pgwal.XLOG_XACT_COMMIT_PREPARED,
                        pgwal.XLOG_XACT_ABORT_PREPARED):
            return
        parsed = pgwal.parse_xact(rec.info, rec.main_data)
        for rnode in parsed["rels"]:
            self._drop_rel(tuple(rnode))

    def _smgr(self, rec):
        t = rec.info & 0xF0
        if t == pgwal.XLOG_SMGR_CREATE:
            x = pgwal.parse_smgr_create(rec.main_data)
            self._fork(x["rnode"], x["fork"])
        elif t == pgwal.XLOG_SMGR_TRUNCATE:
            self.stats["truncates"] += 1
            x = pgwal.parse_smgr_truncate(rec.main_data)
            rnode, nblocks, flags = x["rnode"], x["blkno"], x["flags"]
            main = self._fork(rnode, MAIN_FORKNUM)       # smgrcreate(MAIN)
            if flags & pgwal.SMGR_TRUNCATE_HEAP:
                self._cut(main, nblocks)
            forks = self.rels[rnode]
            if flags & pgwal.SMGR_TRUNCATE_FSM and FSM_FORKNUM in forks:
                self._truncate_fsm(forks[FSM_FORKNUM], nblocks, rec.end)
            if flags & pgwal.SMGR_TRUNCATE_VM and \
                    VISIBILITYMAP_FORKNUM in forks:
                self._truncate_vm(forks[VISIBILITYMAP_FORKNUM], nblocks)

    def _truncate_fsm(self, f, nheapblocks, end):
        logpageno, slot = divmod(nheapblocks, FSM_SLOTS_PER_PAGE)
        if slot > 0:
            blk = fsm_logical_to_physical(logpageno)
            if blk >= f.size:
                return
            old = f.blocks.get(blk)
            if old is not None:
                # fsm_truncate_avail() edits this page; not reproduced.
                f.blocks[blk] = old.copy(exact=False, last_touch=end)
            new = blk + 1
        else:
            new = fsm_logical_to_physical(logpageno)
            if f.size <= new:
                return
        self._cut(f, new)

    def _truncate_vm(self, f, nheapblocks):
        trunc_block = nheapblocks // VM_HEAPBLOCKS_PER_PAGE
        trunc_byte = (nheapblocks % VM_HEAPBLOCKS_PER_PAGE) // \
            VM_HEAPBLOCKS_PER_BYTE
        trunc_offset = (nheapblocks % VM_HEAPBLOCKS_PER_BYTE) * 2
        if trunc_byte or trunc_offset:
            new = trunc_block + 1
            if trunc_block >= f.size:
                return
            old = f.blocks.get(trunc_block)
            if old is not None and old.supported:
                p = self._vm_page(old)
                base = 24
                p[base + trunc_byte + 1:base + VM_MAPSIZE] = \
                    bytes(VM_MAPSIZE - trunc_byte - 1)
                p[base + trunc_byte] &= (1 << trunc_offset) - 1
                f.blocks[trunc_block] = self._edited(old, p)
                self.stats["vm_truncate_edits"] += 1
        else:
            new = trunc_block
        if f.size <= new:
            return
        self._cut(f, new)

    @staticmethod
    def _vm_page(e):
        """A VM page image as vm_readbuf() sees it: a new page is
        PageInit'ed."""
        img = e.image()
        if pgmask.is_new_page(img):
            return page_init()
        return bytearray(img)

    @staticmethod
    def _edited(old, page):
        return old.copy(raw=bytes(page), hole_offset=0, hole_length=0,
                        bimg_info=old.bimg_info & pgwal.BKPIMAGE_APPLY,
                        edited=True)

    def _heap_vm_clears(self, rec):
        """The VM clears a heap record implies (no block ref, no LSN)."""
        t = rec.info & 0x70
        data = rec.main_data
        clears = []          # (heap block ref, bits)
        if rec.rmid == RM_HEAP_ID:
            if t == 0x00:                                  # INSERT
                if data[2] & 0x01:
                    clears.append((rec.block(0), VISIBILITYMAP_VALID_BITS))
            elif t == 0x10:                                # DELETE
                if data[7] & 0x01:
                    clears.append((rec.block(0), VISIBILITYMAP_VALID_BITS))
            elif t in (0x20, 0x40):                        # (HOT_)UPDATE
                new = rec.block(0)
                old = rec.block(1) or new
                if data[7] & 0x01:
                    clears.append((old, VISIBILITYMAP_VALID_BITS))
                if data[7] & 0x02:
                    clears.append((new, VISIBILITYMAP_VALID_BITS))
            elif t == 0x60:                                # LOCK
                if data[7] & 0x01:
                    clears.append((rec.block(0), VISIBILITYMAP_ALL_FROZEN))
        else:
            if t == 0x50:                                  # MULTI_INSERT
                if data[0] & 0x01:
                    clears.append((rec.block(0), VISIBILITYMAP_VALID_BITS))
            elif t == 0x60:                                # LOCK_UPDATED
                if data[7] & 0x01:
                    clears.append((rec.block(0), VISIBILITYMAP_ALL_FROZEN))
        for b, bits in clears:
            if b is None:
                continue
            heapblk = b.blkno
            vmblk = heapblk // VM_HEAPBLOCKS_PER_PAGE
            f = self._fork((b.spc, b.db, b.rel), VISIBILITYMAP_FORKNUM)
            if vmblk >= f.size:
                f.size = vmblk + 1          # visibilitymap_pin() extends
            old = f.blocks.get(vmblk)
            if old is None:
                continue
            if not old.supported:
                f.blocks[vmblk] = old.copy(exact=False, last_touch=rec.end)
                continue
            p = self._vm_page(old)
            byte = 24 + (heapblk % VM_HEAPBLOCKS_PER_PAGE) // \
                VM_HEAPBLOCKS_PER_BYTE
            mask = bits << ((heapblk % VM_HEAPBLOCKS_PER_BYTE) * 2)
            if p[byte] & mask:
                p[byte] &= ~mask & 0xFF
                f.blocks[vmblk] = self._edited(old, p)
                self.stats["vm_clears"] += 1

    def _dbase(self, rec):
        x = pgwal.parse_dbase(rec.info, rec.main_data)
        if x["type"] == "DROP":
            self.stats["db_drops"] += 1
            for ts in x["tablespace_ids"]:
                for rnode in [r for r in self.rels
                              if r[0] == ts and r[1] == x["db_id"]]:
                    self._drop_rel(rnode)
        elif x["type"] == "CREATE_FILE_COPY":
            self.stats["db_file_copies"] += 1
            if not self.clone_file_copy:
                return
            ts, db = x["tablespace_id"], x["db_id"]
            sts, sdb = x["src_tablespace_id"], x["src_db_id"]
            # Redo removes an existing target directory first.
            for rnode in [r for r in self.rels if r[0] == ts and r[1] == db]:
                del self.rels[rnode]
            for rnode, forks in list(self.rels.items()):
                if rnode[0] != sts or rnode[1] != sdb:
                    continue
                copy = {}
                for fork, f in forks.items():
                    g = _Fork()
                    g.size = f.size
                    g.blocks = {b: e if e.source else
                                e.copy(source=(sts, sdb))
                                for b, e in f.blocks.items()}
                    copy[fork] = g
                self.rels[(ts, db, rnode[2])] = copy

    # -- answers -------------------------------------------------------------
    def snapshot(self, lsn=None):
        """The oracle's state now (after the last record applied)."""
        blocks = {}
        sizes = {}
        for rnode, forks in self.rels.items():
            for fork, f in forks.items():
                sizes[rnode + (fork,)] = f.size
                for blkno, e in f.blocks.items():
                    blocks[rnode + (fork, blkno)] = e
        return Snapshot(self.lsn if lsn is None else lsn, blocks, sizes)


def build_snapshots(records, targets, state=None):
    """One pass over @records (an iterable of pgwal.Record in WAL order);
    returns {target: Snapshot} for every LSN in @targets, each holding the
    records with end LSN <= target.  Targets past the last record get the
    final state."""
    state = state or WalState()
    want = sorted(set(targets))
    out = {}
    i = 0
    for rec in records:
        while i < len(want) and rec.end > want[i]:
            out[want[i]] = state.snapshot(want[i])
            i += 1
        state.apply(rec)
    while i < len(want):
        out[want[i]] = state.snapshot(want[i])
        i += 1
    return out
