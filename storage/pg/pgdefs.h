/*
 * pgdefs.h - PostgreSQL 15 constants that ingest and redo act on:
 * resource manager ids, record types, flag bits and the byte offsets of
 * the record structs tarn reads (checked against the 15.20 headers with a
 * program compiled against them; see docs/storage-format.md).
 */
#ifndef TARN_STORAGE_PG_PGDEFS_H
#define TARN_STORAGE_PG_PGDEFS_H

#define PG_BLCKSZ 8192

/* Resource managers (rmgrlist.h order). */
enum {
    PG_RM_XLOG = 0,
    PG_RM_XACT = 1,
    PG_RM_SMGR = 2,
    PG_RM_CLOG = 3,
    PG_RM_DBASE = 4,
    PG_RM_TBLSPC = 5,
    PG_RM_MULTIXACT = 6,
    PG_RM_RELMAP = 7,
    PG_RM_STANDBY = 8,
    PG_RM_HEAP2 = 9,
    PG_RM_HEAP = 10,
    PG_RM_BTREE = 11,
    PG_RM_HASH = 12,
    PG_RM_GIN = 13,
    PG_RM_GIST = 14,
    PG_RM_SEQ = 15,
    PG_RM_SPGIST = 16,
    PG_RM_BRIN = 17,
    PG_RM_COMMIT_TS = 18,
    PG_RM_REPLORIGIN = 19,
    PG_RM_GENERIC = 20,
    PG_RM_LOGICALMSG = 21
};

/* xl_info bits common to every rmgr. */
#define PG_XLR_INFO_MASK          0x0F
#define PG_XLR_RMGR_INFO_MASK     0xF0
#define PG_XLR_SPECIAL_REL_UPDATE 0x01
#define PG_XLR_CHECK_CONSISTENCY  0x02

/* Block reference flags. */
#define PG_BKPBLOCK_FORK_MASK        0x0F
#define PG_BKPBLOCK_HAS_IMAGE        0x10
#define PG_BKPBLOCK_HAS_DATA         0x20
#define PG_BKPBLOCK_WILL_INIT        0x40
#define PG_BKPBLOCK_SAME_REL         0x80
#define PG_BKPIMAGE_HAS_HOLE         0x01
#define PG_BKPIMAGE_APPLY            0x02
#define PG_BKPIMAGE_COMPRESS_PGLZ    0x04
#define PG_BKPIMAGE_COMPRESS_LZ4     0x08
#define PG_BKPIMAGE_COMPRESS_ZSTD    0x10
#define PG_XLR_MAX_BLOCK_ID          32
#define PG_XLR_BLOCK_ID_DATA_SHORT   255
#define PG_XLR_BLOCK_ID_DATA_LONG    254
#define PG_XLR_BLOCK_ID_ORIGIN       253
#define PG_XLR_BLOCK_ID_TOPLEVEL_XID 252

/* Forks. */
#define PG_MAIN_FORKNUM 0
#define PG_FSM_FORKNUM  1
#define PG_VM_FORKNUM   2
#define PG_INIT_FORKNUM 3
#define PG_MAX_FORKNUM  3

/* XLOG record types. */
#define PG_XLOG_CHECKPOINT_SHUTDOWN 0x00
#define PG_XLOG_CHECKPOINT_ONLINE   0x10
#define PG_XLOG_NOOP                0x20
#define PG_XLOG_NEXTOID             0x30
#define PG_XLOG_SWITCH_REC          0x40
#define PG_XLOG_PARAMETER_CHANGE    0x60
#define PG_XLOG_END_OF_RECOVERY     0x90
#define PG_XLOG_FPI_FOR_HINT        0xA0
#define PG_XLOG_FPI                 0xB0

/* CheckPoint struct (88 bytes). */
#define PG_CKPT_SIZE              88
#define PG_CKPT_REDO              0  /* u64 */
#define PG_CKPT_THIS_TLI          8  /* u32 */
#define PG_CKPT_PREV_TLI          12 /* u32 */
#define PG_CKPT_FULL_PAGE_WRITES  16 /* bool */
#define PG_CKPT_NEXT_XID          24 /* u64 FullTransactionId */
#define PG_CKPT_NEXT_OID          32
#define PG_CKPT_NEXT_MULTI        36
#define PG_CKPT_NEXT_MULTI_OFFSET 40
#define PG_CKPT_OLDEST_XID        44
#define PG_CKPT_OLDEST_XID_DB     48
#define PG_CKPT_OLDEST_MULTI      52
#define PG_CKPT_OLDEST_MULTI_DB   56
#define PG_CKPT_TIME              64 /* i64 */
#define PG_CKPT_OLDEST_COMMITTS   72
#define PG_CKPT_NEWEST_COMMITTS   76
#define PG_CKPT_OLDEST_ACTIVE_XID 80

/* Transaction records. */
#define PG_XLOG_XACT_COMMIT             0x00
#define PG_XLOG_XACT_PREPARE            0x10
#define PG_XLOG_XACT_ABORT              0x20
#define PG_XLOG_XACT_COMMIT_PREPARED    0x30
#define PG_XLOG_XACT_ABORT_PREPARED     0x40
#define PG_XLOG_XACT_ASSIGNMENT         0x50
#define PG_XLOG_XACT_INVALIDATIONS      0x60
#define PG_XLOG_XACT_OPMASK             0x70
#define PG_XLOG_XACT_HAS_INFO           0x80
#define PG_XACT_XINFO_HAS_DBINFO        (1u << 0)
#define PG_XACT_XINFO_HAS_SUBXACTS      (1u << 1)
#define PG_XACT_XINFO_HAS_RELFILENODES  (1u << 2)
#define PG_XACT_XINFO_HAS_INVALS        (1u << 3)
#define PG_XACT_XINFO_HAS_TWOPHASE      (1u << 4)
#define PG_XACT_XINFO_HAS_ORIGIN        (1u << 5)
#define PG_XACT_XINFO_HAS_AE_LOCKS      (1u << 6)
#define PG_XACT_XINFO_HAS_GID           (1u << 7)
#define PG_XACT_XINFO_HAS_DROPPED_STATS (1u << 8)
/* xl_xact_prepare: the two-phase state file's header. */
#define PG_XACT_PREPARE_XID 8

/* Storage. */
#define PG_XLOG_SMGR_CREATE   0x10
#define PG_XLOG_SMGR_TRUNCATE 0x20
#define PG_SMGR_TRUNCATE_HEAP 0x0001
#define PG_SMGR_TRUNCATE_VM   0x0002
#define PG_SMGR_TRUNCATE_FSM  0x0004

/* CLOG. */
#define PG_CLOG_ZEROPAGE          0x00
#define PG_CLOG_TRUNCATE          0x10
#define PG_CLOG_XACTS_PER_PAGE    32768
#define PG_SLRU_PAGES_PER_SEGMENT 32

/* Database. */
#define PG_XLOG_DBASE_CREATE_FILE_COPY 0x00
#define PG_XLOG_DBASE_CREATE_WAL_LOG   0x10
#define PG_XLOG_DBASE_DROP             0x20

/* MultiXact. */
#define PG_XLOG_MULTIXACT_ZERO_OFF_PAGE 0x00
#define PG_XLOG_MULTIXACT_ZERO_MEM_PAGE 0x10
#define PG_XLOG_MULTIXACT_CREATE_ID     0x20
#define PG_XLOG_MULTIXACT_TRUNCATE_ID   0x30
#define PG_MULTIXACT_OFFSETS_PER_PAGE   2048
#define PG_MULTIXACT_MEMBERS_PER_GROUP  4
#define PG_MULTIXACT_GROUP_SIZE         20
#define PG_MULTIXACT_GROUPS_PER_PAGE    409
#define PG_MULTIXACT_MEMBERS_PER_PAGE   1636

/* RelMap. */
#define PG_XLOG_RELMAP_UPDATE 0x00
#define PG_RELMAP_FILE_SIZE   512

/* Standby. */
#define PG_XLOG_RUNNING_XACTS 0x10

/* Heap and Heap2. */
#define PG_XLOG_HEAP_OPMASK        0x70
#define PG_XLOG_HEAP_INIT_PAGE     0x80
#define PG_XLOG_HEAP_INSERT        0x00
#define PG_XLOG_HEAP_DELETE        0x10
#define PG_XLOG_HEAP_UPDATE        0x20
#define PG_XLOG_HEAP_TRUNCATE      0x30
#define PG_XLOG_HEAP_HOT_UPDATE    0x40
#define PG_XLOG_HEAP_CONFIRM       0x50
#define PG_XLOG_HEAP_LOCK          0x60
#define PG_XLOG_HEAP_INPLACE       0x70
#define PG_XLOG_HEAP2_REWRITE      0x00
#define PG_XLOG_HEAP2_PRUNE        0x10
#define PG_XLOG_HEAP2_VACUUM       0x20
#define PG_XLOG_HEAP2_FREEZE_PAGE  0x30
#define PG_XLOG_HEAP2_VISIBLE      0x40
#define PG_XLOG_HEAP2_MULTI_INSERT 0x50
#define PG_XLOG_HEAP2_LOCK_UPDATED 0x60
#define PG_XLOG_HEAP2_NEW_CID      0x70
/* Flags bytes of the heap records, and where they are. */
#define PG_XLH_INSERT_ALL_VISIBLE_CLEARED     0x01
#define PG_XLH_DELETE_ALL_VISIBLE_CLEARED     0x01
#define PG_XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED 0x01
#define PG_XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED 0x02
#define PG_XLH_LOCK_ALL_FROZEN_CLEARED        0x01
#define PG_XL_HEAP_INSERT_FLAGS               2 /* in xl_heap_insert (4 bytes) */
#define PG_XL_HEAP_DELETE_FLAGS               7 /* xl_heap_delete (8) */
#define PG_XL_HEAP_UPDATE_FLAGS               7 /* xl_heap_update (16) */
#define PG_XL_HEAP_LOCK_FLAGS                 7 /* xl_heap_lock (8) */
#define PG_XL_HEAP_MULTI_INSERT_FLAGS         0 /* xl_heap_multi_insert (4) */
#define PG_XL_HEAP_LOCK_UPDATED_FLAGS         7 /* xl_heap_lock_updated (8) */

/* Visibility map. */
#define PG_VM_HEAPBLOCKS_PER_PAGE 32672 /* (8192 - 24) * 4 */
#define PG_VM_BITS_PER_HEAPBLOCK  2
#define PG_VM_ALL_VISIBLE         0x01
#define PG_VM_ALL_FROZEN          0x02

/* Page header. */
#define PG_PAGE_HEADER_SIZE    24
#define PG_PD_LSN              0 /* {u32 xlogid, u32 xrecoff} */
#define PG_PD_CHECKSUM         8
#define PG_PD_FLAGS            10
#define PG_PD_LOWER            12
#define PG_PD_UPPER            14
#define PG_PD_SPECIAL          16
#define PG_PD_PAGESIZE_VERSION 18
#define PG_PD_PRUNE_XID        20

/* Tablespaces tarn supports (as Neon does). */
#define PG_DEFAULTTABLESPACE_OID 1663
#define PG_GLOBALTABLESPACE_OID  1664

/* Standby: xl_running_xacts. */
#define PG_RUNNING_XACTS_OLDEST_RUNNING 16

/* Storage: xl_smgr_create (16 bytes), xl_smgr_truncate (20 bytes). */
#define PG_SMGR_CREATE_SIZE    16
#define PG_SMGR_CREATE_FORK    12
#define PG_SMGR_TRUNCATE_SIZE  20
#define PG_SMGR_TRUNCATE_BLKNO 0
#define PG_SMGR_TRUNCATE_RNODE 4
#define PG_SMGR_TRUNCATE_FLAGS 16

/* FSM geometry (8 KiB pages): leaf slots per page and tree depth. */
#define PG_FSM_SLOTS_PER_PAGE 4069
#define PG_FSM_TREE_DEPTH     3

/* MultiXact: xl_multixact_create (12 + 8 per member), truncate (20). */
#define PG_MULTIXACT_CREATE_HDR    12
#define PG_MULTIXACT_TRUNCATE_SIZE 20

/* Database records. */
#define PG_DBASE_FILE_COPY_SIZE 16
#define PG_DBASE_WAL_LOG_SIZE   8
#define PG_DBASE_DROP_HDR       8

/* RelMap: xl_relmap_update header (dbid, tsid, nbytes). */
#define PG_RELMAP_UPDATE_HDR 12

/* Transaction ids. */
#define PG_FIRST_NORMAL_XID 3

/* pg_control (ControlFileData, 296 bytes used of an 8 KiB file). */
#define PG_CONTROL_FILE_SIZE         8192
#define PG_CONTROL_VERSION           1300
#define PG_CATALOG_VERSION           202209061
#define PG_CTL_SYSTEM_ID             0
#define PG_CTL_VERSION               8
#define PG_CTL_CATALOG_VERSION       12
#define PG_CTL_STATE                 16
#define PG_CTL_TIME                  24
#define PG_CTL_CHECKPOINT            32
#define PG_CTL_CHECKPOINT_COPY       40
#define PG_CTL_UNLOGGED_LSN          128
#define PG_CTL_MIN_RECOVERY_POINT    136
#define PG_CTL_MIN_RECOVERY_TLI      144
#define PG_CTL_BACKUP_START          152
#define PG_CTL_BACKUP_END            160
#define PG_CTL_BACKUP_END_REQUIRED   168
#define PG_CTL_WAL_LEVEL             172
#define PG_CTL_BLCKSZ                216
#define PG_CTL_XLOG_BLCKSZ           224
#define PG_CTL_XLOG_SEG_SIZE         228
#define PG_CTL_DATA_CHECKSUM_VERSION 252
#define PG_CTL_CRC                   288
#define PG_DB_SHUTDOWNED             1
#define PG_DB_SHUTDOWNED_IN_RECOVERY 2

#endif
