from collections.abc import Sequence

from typing_extensions import Buffer

ABI_VERSION: int

class NativeError(OSError): ...

def secure_zero(buffer: Buffer, /) -> None: ...
def crypto_version() -> str: ...
def crypto_selftests() -> tuple[str, ...]: ...
def crypto_selftest(index: int, /) -> None: ...
def aes256gcm_seal(
    key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer, out: Buffer, /
) -> None: ...
def aes256gcm_open(
    key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer, out: Buffer, /
) -> None: ...
def xor(dst: Buffer, a: Buffer, b: Buffer, /) -> None: ...
def random_into(buffer: Buffer, /) -> None: ...
def rsa_oaep_sha256_encrypt(spki_der: Buffer, label: Buffer, message: Buffer, /) -> bytes: ...
def audit_chain(
    records: Sequence[bytes], first_seq: int, start_hash: Buffer, /
) -> tuple[int, int, bytes]: ...

WIPE_DIRECT: int
WIPE_CHUNK_BYTES: int

class WipeState:
    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def position(self) -> int: ...
    @property
    def durable(self) -> int: ...
    @property
    def error_offset(self) -> int: ...
    @property
    def buffered(self) -> bool: ...
    @property
    def cancelled(self) -> bool: ...

def wipe_geometry(fd: int, /) -> tuple[int, int]: ...
def wipe_write(
    fd: int,
    start: int,
    end: int,
    kind: int,
    byte: int,
    key: Buffer,
    flags: int,
    sync_every: int,
    state: WipeState,
    /,
) -> None: ...
def wipe_verify(
    fd: int,
    start: int,
    end: int,
    kind: int,
    byte: int,
    key: Buffer,
    flags: int,
    state: WipeState,
    /,
) -> None: ...

STREAM_HEADER_BYTES: int
STREAM_TAG_BYTES: int
STREAM_DEFAULT_SHIFT: int
STREAM_MIN_SHIFT: int
STREAM_MAX_SHIFT: int
STREAM_MAX_THREADS: int
STREAM_DIRECT: int

class StreamState:
    def __init__(self) -> None: ...
    def cancel(self) -> None: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @property
    def bytes_moved(self) -> int: ...
    @property
    def bad_segment(self) -> int: ...
    @property
    def cancelled(self) -> bool: ...

def stream_sealed_size(length: int, seg_shift: int, /) -> int: ...
def stream_plain_size(header: Buffer, sealed_length: int, /) -> int: ...
def stream_seal(
    key: Buffer,
    context: Buffer,
    seg_shift: int,
    threads: int,
    src: Buffer,
    dst: Buffer,
    state: StreamState | None,
    /,
) -> int: ...
def stream_open(
    key: Buffer,
    context: Buffer,
    threads: int,
    src: Buffer,
    dst: Buffer,
    state: StreamState | None,
    /,
) -> int: ...
def stream_seal_fd(
    key: Buffer,
    context: Buffer,
    seg_shift: int,
    threads: int,
    flags: int,
    in_fd: int,
    out_fd: int,
    state: StreamState,
    /,
) -> int: ...
def stream_open_fd(
    key: Buffer,
    context: Buffer,
    threads: int,
    flags: int,
    in_fd: int,
    out_fd: int,
    state: StreamState,
    /,
) -> int: ...
def xts_sectors(
    key: Buffer, first_sector: int, sector_size: int, src: Buffer, dst: Buffer, encrypt: bool, /
) -> None: ...
def xts_unit(key: Buffer, tweak: Buffer, src: Buffer, dst: Buffer, encrypt: bool, /) -> None: ...

HASH_OK: int
HASH_MISMATCH: int
HASH_SIZE: int
HASH_NOT_REGULAR: int
HASH_MISSING: int
HASH_ESCAPES: int
HASH_SYMLINK: int
HASH_IO: int
HASH_SKIPPED: int

def hash_files(
    dirfd: int, items: Sequence[tuple[str, int, Buffer | None]], threads: int, stop_early: bool, /
) -> list[tuple[int, int, int, int, bytes]]: ...
def argon2id_into(
    password: Buffer, salt: Buffer, t_cost: int, m_cost_kib: int, lanes: int, out: Buffer
) -> None: ...
