//! `qipc write`: data into an existing segment, under its lock; all of it
//! or nothing.

use qipc::AccessMode;
use serde::Serialize;

use super::attach::{self, Session};
use crate::{
    cli::WriteArgs,
    error::{CliError, CmdResult},
    json::{self, KeyJson},
    keys, output,
};

#[derive(Serialize)]
struct WriteDoc {
    key: KeyJson,
    size: usize,
    offset: u64,
    bytes: usize,
}

pub fn run(a: &WriteArgs) -> CmdResult {
    let key = keys::resolve(&a.key)?;
    let data = super::payload(&a.data)?;
    let session = Session::open(&key, AccessMode::ReadWrite, a.timeout)?;
    let written = (|| {
        let mut guard = session.lock()?;
        let size = guard.len();
        let fits = a.offset.checked_add(data.len() as u64).is_some_and(|end| end <= size as u64);
        if !fits {
            return Err(CliError::new(
                "InvalidSize",
                format!(
                    "{} bytes at offset {} do not fit in the {size}-byte segment; nothing was written",
                    data.len(),
                    a.offset
                ),
            ));
        }
        let offset = super::to_usize(a.offset, "offset")?;
        guard.write_at(offset, &data).map_err(|e| attach::error(&e, &key, None))?;
        Ok(size)
    })();
    let closed = session.close();
    let size = written?;
    closed?;
    if a.out.json {
        json::print("write", &WriteDoc { key: KeyJson::of(&key), size, offset: a.offset, bytes: data.len() })?;
    } else {
        output::outln(&format!("wrote {} bytes at offset {} of the key {}", data.len(), a.offset, keys::label(&key)))?;
    }
    Ok(0)
}
