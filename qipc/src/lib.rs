//! # qipc: keyed shared memory, byte-compatible with Qt
//!
//! `qipc` is the Rust counterpart of Qt's `QSharedMemory` and
//! `QSystemSemaphore`. It derives the same names from a key, takes the same
//! lock, follows the same ownership rules and writes the same
//! [`datastream`] bytes, so a Rust process and a Qt process (C++, PyQt or
//! PySide, Qt 5 or Qt 6) can share a segment and lock it against each other.
//!
//! | Qt | qipc |
//! |---|---|
//! | `QSharedMemory` | [`SharedMemory`] |
//! | `QSystemSemaphore` | [`SystemSemaphore`] |
//! | `QNativeIpcKey` | [`NativeKey`] |
//! | `QSharedMemory::SharedMemoryError` | [`ErrorKind`] (in [`Error`]) |
//! | `QDataStream` | [`datastream`] |
//!
//! ## Quick start
//!
//! The classic writer: create a 1024-byte segment named
//! `"SharedMemoryExample"`, serialise a `QString` into it with the
//! QDataStream format, under the lock.
//!
//! ```
//! use qipc::{datastream::DataStreamWriter, AccessMode, SharedMemory};
//!
//! # let key = format!("SharedMemoryExample-doc-{}", std::process::id());
//! let mut shared_memory = SharedMemory::new(&key);     // QSharedMemory sharedMemory("SharedMemoryExample");
//! shared_memory.create(1024, AccessMode::ReadWrite)?;  // sharedMemory.create(1024)
//!
//! let mut out = DataStreamWriter::new();               // QBuffer + QDataStream out(&buffer)
//! out.write_qstring(Some("Hello from writer!"));       // out << QString("Hello from writer!")
//! let data = out.into_bytes();
//!
//! {
//!     let mut guard = shared_memory.lock()?;           // sharedMemory.lock()
//!     let n = data.len().min(guard.len());
//!     guard.write_at(0, &data[..n])?;                  // memcpy(sharedMemory.data(), ...)
//! }                                                    // sharedMemory.unlock()
//! # let mut reader_side = SharedMemory::new(&key);
//! # reader_side.attach(AccessMode::ReadOnly)?;
//! # let bytes = reader_side.lock()?.to_vec();
//! # let mut input = qipc::datastream::DataStreamReader::new(&bytes);
//! # assert_eq!(input.read_qstring()?.as_deref(), Some("Hello from writer!"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! And the reader, in another process:
//!
//! ```no_run
//! use qipc::{datastream::DataStreamReader, AccessMode, SharedMemory};
//!
//! let mut shared_memory = SharedMemory::new("SharedMemoryExample");
//! shared_memory.attach(AccessMode::ReadOnly)?;          // sharedMemory.attach()
//! let data = shared_memory.lock()?.to_vec();            // lock, memcpy, unlock
//! let message = DataStreamReader::new(&data).read_qstring()?; // in >> message
//! println!("Data read from shared memory: {message:?}");
//! shared_memory.detach()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Keys
//!
//! A plain string is a *legacy key*, as `QSharedMemory(QString)`: on Linux it
//! names a System V segment whose key file is
//! `/tmp/qipc_sharedmemory_<letters><sha1>`. Qt 6.6+ programs may instead use
//! a [`NativeKey`], often POSIX (`NativeKey::posix("QSharedMemoryExample")`,
//! `/dev/shm/QSharedMemoryExample`). Both work with both Qt 5 and Qt 6 where
//! Qt supports them.
//!
//! ## Where qipc differs from Qt
//!
//! - POSIX segments are removed when the last process detaches, instead of
//!   staying in `/dev/shm` forever (see [`SharedMemory`]).
//! - POSIX segments reserve their memory at create, so a full `/dev/shm` is
//!   an [`ErrorKind::OutOfResources`] error instead of a SIGBUS.
//! - [`SharedMemory::try_lock`], [`SharedMemory::lock_timeout`],
//!   [`SystemSemaphore::try_acquire`] and
//!   [`SystemSemaphore::acquire_timeout`] exist.
//! - The lock is a guard; data is copied in and out rather than exposed as a
//!   raw `void*` (see [`shared_memory`] for why).
//! - A `create` that fails with `AlreadyExists` does not take over the lock
//!   semaphore, so it cannot remove a semaphore others still use.
//!
//! ## Platforms
//!
//! | platform | status |
//! |---|---|
//! | Linux | run; checked against real Qt 5 and Qt 6 (System V and POSIX keys) |
//! | Windows | run under Wine; checked against real Windows Qt 5.15.2 and 6.12 (legacy and `windows:` keys) |
//! | macOS | type-checked, not run |
//!
//! On Windows a plain string key is Qt's Windows legacy key and the kernel
//! frees every object with its last handle (see [`SharedMemory`]); on
//! macOS the System V backend is as on Linux, and POSIX keys follow Darwin's
//! rules (31-byte names, nothing removed that cannot be proven unused). All
//! system calls sit behind one internal module, so other backends can be
//! added without changing this API.

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
compile_error!(
    "qipc supports Linux, macOS and Windows, the platforms whose Qt IPC it implements; this target is none of them"
);

/// Every item below exists only on the supported platforms, so that an
/// unsupported target gets the one message above, not a cascade of errors.
macro_rules! supported {
    ($($item:item)*) => { $( #[cfg(any(target_os = "linux", target_os = "macos", windows))] $item )* };
}

supported! {
    mod backend;
    #[cfg(feature = "datastream")]
    #[cfg_attr(docsrs, doc(cfg(feature = "datastream")))]
    pub use qipc_datastream as datastream;
    mod error;
    #[cfg(target_os = "linux")]
    #[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
    pub mod inspect;
    pub mod key;
    mod semaphore;
    pub mod shared_memory;
    #[allow(unsafe_code)]
    mod sys;

    pub use error::{Error, ErrorKind, Operation, Result};
    pub use key::{KeyParseError, KeyType, NativeKey};
    pub use semaphore::{SemaphoreMode, SystemSemaphore};
    pub use shared_memory::{AccessMode, CreateOptions, HugePages, Opened, SharedMemory, SharedMemoryGuard};
}
