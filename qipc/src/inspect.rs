//! Inspection of the Qt-style objects on this machine (placeholder; being
//! written for the `qipc` command: `ls`, `info`, `gc`, `rm`).

#![forbid(unsafe_code)]
