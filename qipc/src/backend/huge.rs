//! Huge-page policy: when to ask the kernel, and why it refused, in the
//! kernel's own terms (the knobs a user can change).

#![forbid(unsafe_code)]

/// Whether a created segment uses huge pages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(windows, allow(dead_code))] // Windows segments never use huge pages
pub(crate) enum HugeOutcome {
    #[default]
    NotRequested,
    Active,
    Unavailable(String),
}

#[cfg(target_os = "linux")]
fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default().trim().to_string()
}

/// Why `shmget(SHM_HUGETLB)` failed with `errno`.
#[cfg(target_os = "linux")]
pub(crate) fn hugetlb_refusal(code: Option<i32>) -> String {
    use crate::sys::errno;
    let reserved = read_trimmed("/proc/sys/vm/nr_hugepages");
    let cause = match code {
        Some(errno::ENOMEM) => format!("no free reserved huge pages (vm.nr_hugepages = {reserved})"),
        Some(errno::EPERM) => "it needs CAP_IPC_LOCK or membership of vm.hugetlb_shm_group".to_string(),
        Some(errno::EINVAL) => "the size is not allowed for huge pages".to_string(),
        _ => format!("vm.nr_hugepages = {reserved}"),
    };
    format!("System V huge pages (SHM_HUGETLB) refused: {cause}")
}

/// Huge System V pages are a Linux feature.
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn hugetlb_refusal(_code: Option<i32>) -> String {
    "huge pages are a Linux feature".to_string()
}

/// Transparent huge pages are a Linux feature.
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn shmem_thp_refusal() -> Option<String> {
    Some("transparent huge pages are a Linux feature".to_string())
}

/// Whether the kernel's shmem THP policy lets `MADV_HUGEPAGE` work for a
/// System V segment; the reason if not.
#[cfg(target_os = "linux")]
pub(crate) fn shmem_thp_refusal() -> Option<String> {
    let policy = read_trimmed("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
    let active = policy.split_whitespace().find(|w| w.starts_with('[')).unwrap_or("[unknown]").to_string();
    match active.as_str() {
        "[advise]" | "[always]" | "[within_size]" | "[force]" => None,
        _ => Some(format!(
            "the kernel's shmem THP policy is {active} (/sys/kernel/mm/transparent_hugepage/shmem_enabled)"
        )),
    }
}

/// Whether the `/dev/shm` mount's `huge=` option lets `MADV_HUGEPAGE` work
/// for a POSIX object; the reason if not.
#[cfg(target_os = "linux")]
pub(crate) fn devshm_thp_refusal() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let options = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 4 && f[1] == "/dev/shm")
        .map(|f| f[3].to_string())
        .next_back();
    let Some(options) = options else {
        return Some("/dev/shm is not a mount point listed in /proc/self/mounts".into());
    };
    let huge = options.split(',').find_map(|o| o.strip_prefix("huge=")).unwrap_or("never");
    match huge {
        "always" | "within_size" | "advise" => None,
        _ => Some(format!("/dev/shm is mounted with huge={huge} (remount with huge=advise or huge=within_size)")),
    }
}
