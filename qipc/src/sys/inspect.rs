//! Read-only views of the machine's IPC objects for [`crate::inspect`]:
//! `/proc/sysvipc`, `/proc/*/maps`, `/proc/*/fd`, key files and `/dev/shm`.
