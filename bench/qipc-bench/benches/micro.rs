//! Single-process micro-benchmarks of qipc, with divan.
//!
//! ```text
//! cargo bench -p qipc-bench --bench micro            # measure
//! cargo bench -p qipc-bench --bench micro -- --test  # run each once (CI)
//! ```
//!
//! The side-by-side comparison with Qt and the raw system calls, and every
//! cross-process figure, come from `scripts/bench.sh` (see BENCHMARKS.md).
//! Keys are unique to the run and every object is removed at the end.

use divan::{black_box, Bencher};
use qipc::{
    datastream::{DataStreamReader, DataStreamWriter},
    AccessMode, KeyType, NativeKey, SharedMemory,
};

fn main() {
    divan::main();
}

fn unique(tag: &str) -> String {
    format!("qipcmicro{tag}{}", std::process::id())
}

/// A created segment that is detached (and so removed) when dropped.
fn segment(key: NativeKey, size: usize) -> SharedMemory {
    let mut shm = SharedMemory::with_native_key(key);
    shm.create(size, AccessMode::ReadWrite).expect("create the benchmark segment");
    shm
}

fn legacy(tag: &str) -> NativeKey {
    NativeKey::legacy_shared_memory(&unique(tag), KeyType::SYSTEM_V)
}

fn posix(tag: &str) -> NativeKey {
    NativeKey::posix(format!("/{}", unique(tag)))
}

/// Uncontended lock + unlock: Qt's protocol (two `semop` calls) for a
/// legacy key, a named POSIX semaphore for a POSIX key.
#[divan::bench(args = ["systemv", "posix"])]
fn lock_unlock(bencher: Bencher<'_, '_>, kind: &str) {
    let key = if kind == "posix" { posix("lock") } else { legacy("lock") };
    let shm = segment(key, 4096);
    bencher.bench_local(|| drop(black_box(shm.lock().expect("lock"))));
}

/// `try_lock` on a free lock.
#[divan::bench(args = ["systemv", "posix"])]
fn try_lock_unlock(bencher: Bencher<'_, '_>, kind: &str) {
    let key = if kind == "posix" { posix("try") } else { legacy("try") };
    let shm = segment(key, 4096);
    bencher.bench_local(|| drop(black_box(shm.try_lock().expect("try_lock"))));
}

/// Qt's legacy key derivation (letters + SHA-1 of the key, temp dir).
#[divan::bench]
fn legacy_key_derivation() -> NativeKey {
    NativeKey::legacy_shared_memory(black_box("SharedMemoryExample"), KeyType::SYSTEM_V)
}

/// Parsing Qt 6's text form of a native key.
#[divan::bench]
fn native_key_from_string() -> NativeKey {
    NativeKey::from_string(black_box(
        "systemv:/tmp/qipc_sharedmemory_SharedMemoryExample?legacyKey=SharedMemoryExample",
    ))
    .expect("valid key")
}

/// The writer/reader example's message through QDataStream, both ways.
#[divan::bench]
fn qstring_roundtrip() -> Option<String> {
    let mut out = DataStreamWriter::new();
    out.write_qstring(Some(black_box("Hello from writer!")));
    let bytes = out.into_bytes();
    DataStreamReader::new(&bytes).read_qstring().expect("decode")
}

/// Copy into and out of a locked segment.
#[divan::bench(args = [4096, 1 << 20])]
fn write_then_read_under_lock(bencher: Bencher<'_, '_>, size: usize) {
    let shm = segment(legacy(&format!("bulk{size}")), size);
    let data = vec![0x5au8; size];
    let mut back = vec![0u8; size];
    bencher.counter(divan::counter::BytesCount::new(2 * size)).bench_local(|| {
        let mut guard = shm.lock().expect("lock");
        guard.write_at(0, black_box(&data)).expect("write");
        guard.read_at(0, black_box(&mut back)).expect("read");
    });
}
